-- delivery.lua: the simulator's webhook deliveries (api-v3.md section 6), signed
-- as Linq signs them (Standard Webhooks).
--
-- What happens, in order:
--   1. An API handler causes an event (model.lua: a new chat, a sent message, an
--      inbound message from POST /v3/sim/inbound) and queues it on the request's
--      store object with queue(). Nothing is sent yet.
--   2. When the request succeeded, router.lua calls flush(): the namespace's active
--      subscriptions that want the event type (subscribed_events) and the line
--      (phone_numbers; null = every line) get the events, in order, through one
--      ngx.timer.at per subscription. Nothing is delivered inside the API request.
--   3. The timer POSTs each event over a cosocket (a small HTTP/1.1 client below,
--      Connection: close) with the headers webhook-id, webhook-timestamp,
--      webhook-signature ("v1," .. base64(HMAC-SHA256(key, id.ts.body)), key = the
--      base64-decoded part of the secret after "whsec_"), Content-Type
--      application/json, and the legacy X-Webhook-Event and X-Webhook-Subscription-ID
--      (X-Webhook-Signature is not sent: what it signs is not documented).
--      A 2xx is a delivery; 5xx, 429, a refused connection, a timeout or a broken
--      answer is retried after 0.2, 0.5 and 1 s (Linq: up to 10 times over ~25
--      minutes); any other status (3xx, 4xx) is final. Every attempt is re-signed
--      with its own timestamp; the webhook-id stays the same.
--   4. Every attempt is recorded in lua_shared_dict sim_webhooks and served, oldest
--      first, by GET /webhook-log/<subscription_id> (sim.lua), with the number of
--      deliveries not finished yet ("pending"), so a test can wait for pending = 0
--      instead of guessing how long a delivery takes.
--
-- Targets: only loopback hosts (127.0.0.0/8, localhost) are ever contacted, over
-- http:// or https:// (TLS without certificate checks). Subscriptions to any other
-- host are kept (the API accepts them) but their deliveries are recorded as
-- "skipped" and never leave the machine.
--
-- HMAC-SHA256 comes from libcrypto through LuaJIT's FFI: Debian's nginx is linked
-- with libcrypto.so.3, so its symbols are already in the process (ffi.C); else the
-- library is loaded by name.

-- luacheck: std ngx_lua

local ffi = require("ffi")
local json = require("json")
local C = require("common")

local ngx = ngx
local find, sub, lower, match, format, gsub =
  string.find, string.sub, string.lower, string.match, string.format, string.gsub
local concat = table.concat
local type, tonumber, tostring, ipairs, pcall, error = type, tonumber, tostring, ipairs, pcall, error

local _M = {}

local null = json.null

_M.WEBHOOK_VERSION = "2026-02-03"
_M.API_VERSION = "v3"
-- The simulator's partner id (the envelope's partner_id): one fixed value.
_M.PARTNER_ID = "5e1a0000-0000-4000-8000-00000000c0de"

local RETRY_DELAYS = { 0.2, 0.5, 1 } -- seconds before the 2nd, 3rd and 4th attempt
local CONNECT_TIMEOUT, SEND_TIMEOUT, READ_TIMEOUT = 2000, 5000, 5000 -- ms
local KEEP = 1000             -- log entries kept per subscription
local MAX_RESPONSE = 65536    -- response body bytes read (and dropped) per attempt
local EXCERPT = 200           -- response body bytes kept in the log

-- HMAC-SHA256 through libcrypto --------------------------------------------------

pcall(ffi.cdef, [[
typedef struct evp_md_st EVP_MD;
const EVP_MD *EVP_sha256(void);
unsigned char *HMAC(const EVP_MD *evp_md, const void *key, int key_len,
                    const unsigned char *d, size_t n, unsigned char *md,
                    unsigned int *md_len);
]])

local function has_hmac(lib)
  return pcall(function() return lib.HMAC ~= nil and lib.EVP_sha256 ~= nil end)
end

local crypto, crypto_err
do
  if has_hmac(ffi.C) then
    crypto = ffi.C
  else
    local tried = {}
    for _, name in ipairs({ "libcrypto.so.3", "crypto" }) do
      local ok, lib = pcall(ffi.load, name)
      if ok and has_hmac(lib) then
        crypto = lib
        break
      end
      tried[#tried + 1] = name .. ": " .. tostring(lib)
    end
    if not crypto then crypto_err = concat(tried, "; ") end
  end
end
if not crypto then
  error("sim: no HMAC-SHA256 for webhook signatures (libcrypto not found: " .. tostring(crypto_err) .. ")")
end

local md_buf = ffi.new("unsigned char[32]")
local md_len = ffi.new("unsigned int[1]")

-- The raw HMAC-SHA256 of msg under key (both strings).
local function hmac_sha256(key, msg)
  local out = crypto.HMAC(crypto.EVP_sha256(), key, #key, msg, #msg, md_buf, md_len)
  if out == nil or md_len[0] ~= 32 then error("sim: HMAC-SHA256 failed") end
  return ffi.string(md_buf, 32)
end

-- The secret's key: the bytes of its base64 after "whsec_".
function _M.secret_key(secret)
  local b64 = sub(secret, 1, 6) == "whsec_" and sub(secret, 7) or secret
  return ngx.decode_base64(b64)
end

-- "v1,<base64>" for webhook-id id, timestamp ts (a number or its digits) and body.
function _M.signature(key, id, ts, body)
  return "v1," .. ngx.encode_base64(hmac_sha256(key, id .. "." .. tostring(ts) .. "." .. body))
end

-- Targets ----------------------------------------------------------------------------

-- Parses an http(s) URL: { scheme, host (lower case), port, hostport (as written),
-- path (with the query), loopback (the address to connect to, or nil) } or nil.
function _M.parse_target(url)
  if type(url) ~= "string" then return nil end
  local scheme, authority, rest = match(url, "^([hH][tT][tT][pP][sS]?)://([^/?#%s]+)([^#%s]*)$")
  if not scheme then return nil end
  scheme = lower(scheme)
  if find(authority, "@", 1, true) then return nil end
  local host, port = match(authority, "^([^:]+):(%d+)$")
  if not host then
    host = authority
    if find(host, ":", 1, true) then return nil end -- IPv6 literals: not supported
    port = scheme == "https" and 443 or 80
  else
    port = tonumber(port)
  end
  if port < 1 or port > 65535 then return nil end
  host = lower(host)
  if rest == "" then rest = "/" elseif sub(rest, 1, 1) == "?" then rest = "/" .. rest end
  local addr
  if host == "localhost" then
    addr = "127.0.0.1"
  else
    local a, b, c = match(host, "^127%.(%d+)%.(%d+)%.(%d+)$")
    if a and tonumber(a) <= 255 and tonumber(b) <= 255 and tonumber(c) <= 255 then addr = host end
  end
  return { scheme = scheme, host = host, port = port, hostport = authority, path = rest, loopback = addr }
end

-- The log ---------------------------------------------------------------------------
-- Keys: n:<sub> (entries, atomic incr), e:<sub>:<i> (entry i as JSON), p:<sub>
-- (deliveries not finished). Subscription ids are UUIDs: no namespace needed.

local dict -- ngx.shared.sim_webhooks, set by init()

function _M.init()
  dict = ngx.shared.sim_webhooks
  if not dict then error("sim: lua_shared_dict sim_webhooks is missing") end
end

local function pending(sub_id, n)
  local v = dict:incr("p:" .. sub_id, n, 0)
  if v and v < 0 then dict:set("p:" .. sub_id, 0) end
end

local function record(sub_id, entry)
  local n = dict:incr("n:" .. sub_id, 1, 0)
  if not n then return end
  entry.seq = n
  entry.time = C.iso()
  dict:set(format("e:%s:%d", sub_id, n), json.encode(entry))
  if n > KEEP then dict:delete(format("e:%s:%d", sub_id, n - KEEP)) end
end

-- GET /webhook-log/<id>: status, body; DELETE clears the entries.
function _M.serve(sub_id)
  local n = dict:get("n:" .. sub_id) or 0
  local first = n - KEEP + 1
  if first < 1 then first = 1 end
  if ngx.req.get_method() == "DELETE" then
    for i = first, n do dict:delete(format("e:%s:%d", sub_id, i)) end
    dict:delete("n:" .. sub_id)
    n, first = 0, 1
  end
  local parts = {}
  for i = first, n do
    local e = dict:get(format("e:%s:%d", sub_id, i))
    if e then parts[#parts + 1] = e end
  end
  return 200, '{"deliveries":[' .. concat(parts, ",") .. '],"pending":'
    .. format("%d", dict:get("p:" .. sub_id) or 0) .. ',"subscription_id":' .. json.quote(sub_id) .. "}"
end

-- A small HTTP/1.1 client ----------------------------------------------------------

-- Reads the rest of an answer (headers, then a body of at most MAX_RESPONSE bytes);
-- returns an excerpt of the body.
local function read_answer(sock, status)
  local clen, chunked
  while true do
    local line, err = sock:receive("*l")
    if not line then return nil, "reading the headers: " .. tostring(err) end
    if line == "" then break end
    local name, value = match(line, "^([^:]+):%s*(.-)%s*$")
    if name then
      name = lower(name)
      if name == "content-length" then clen = tonumber(value) end
      if name == "transfer-encoding" and find(lower(value), "chunked", 1, true) then chunked = true end
    end
  end
  if status == 204 or status == 304 or (status >= 100 and status < 200) then return "" end
  local body
  if chunked then
    local parts, total = {}, 0
    while total < MAX_RESPONSE do
      local line = sock:receive("*l")
      local size = line and tonumber(match(line, "^%s*(%x+)"), 16)
      if not size then break end
      if size == 0 then break end
      local piece = sock:receive(size)
      if not piece then break end
      parts[#parts + 1] = piece
      total = total + size
      sock:receive("*l")
    end
    body = concat(parts)
  elseif clen then
    body = clen > 0 and sock:receive(clen < MAX_RESPONSE and clen or MAX_RESPONSE) or ""
  else -- until the server closes (we sent Connection: close)
    local parts, total = {}, 0
    while total < MAX_RESPONSE do
      local piece, err, partial = sock:receive(4096)
      piece = piece or partial
      if piece and piece ~= "" then
        parts[#parts + 1] = piece
        total = total + #piece
      end
      if err then break end
    end
    body = concat(parts)
  end
  return sub(body or "", 1, EXCERPT)
end

-- POSTs body to target with headers (a list of "Name: value" lines). Returns the
-- status and an excerpt of the answer's body, or nil and what went wrong.
local function post(target, headers, body)
  local sock = ngx.socket.tcp()
  sock:settimeouts(CONNECT_TIMEOUT, SEND_TIMEOUT, READ_TIMEOUT)
  local ok, err = sock:connect(target.loopback, target.port)
  if not ok then return nil, "connect: " .. tostring(err) end
  if target.scheme == "https" then
    ok, err = sock:sslhandshake(nil, target.host, false)
    if not ok then
      sock:close()
      return nil, "TLS handshake: " .. tostring(err)
    end
  end
  local req = "POST " .. target.path .. " HTTP/1.1\r\nHost: " .. target.hostport .. "\r\n"
    .. "User-Agent: linq-sim-webhooks/1\r\nContent-Type: application/json\r\n"
    .. "Content-Length: " .. #body .. "\r\n" .. concat(headers, "\r\n")
    .. "\r\nConnection: close\r\n\r\n" .. body
  ok, err = sock:send(req)
  if not ok then
    sock:close()
    return nil, "send: " .. tostring(err)
  end
  local line
  line, err = sock:receive("*l")
  if not line then
    sock:close()
    return nil, "reading the status line: " .. tostring(err)
  end
  local status = tonumber(match(line, "^HTTP/%d%.%d (%d%d%d)"))
  if not status then
    sock:close()
    return nil, "not an HTTP answer: " .. sub(gsub(line, "%c", "?"), 1, 80)
  end
  local excerpt = read_answer(sock, status)
  sock:close()
  return status, nil, excerpt
end

-- Delivering ---------------------------------------------------------------------------

local function retryable(status)
  return status == nil or status == 429 or status >= 500
end

-- One event to one subscription: attempts until a final outcome, each recorded.
local function deliver_one(dest, ev)
  for attempt = 1, #RETRY_DELAYS + 1 do
    local ts = ngx.time()
    local sig = _M.signature(dest.key, ev.webhook_id, ts, ev.body)
    local headers = {
      "webhook-id: " .. ev.webhook_id,
      "webhook-timestamp: " .. ts,
      "webhook-signature: " .. sig,
      "X-Webhook-Event: " .. ev.event_type,
      "X-Webhook-Subscription-ID: " .. dest.id,
    }
    local ok, status, err, excerpt = pcall(post, dest.target, headers, ev.body)
    if not ok then status, err = nil, "simulator error: " .. tostring(status) end
    local outcome
    if status and status >= 200 and status < 300 then
      outcome = "delivered"
    elseif retryable(status) and attempt <= #RETRY_DELAYS and not ngx.worker.exiting() then
      outcome = "retry"
    else
      outcome = "failed"
    end
    record(dest.id, {
      event_id = ev.event_id, webhook_id = ev.webhook_id, event_type = ev.event_type,
      target_url = dest.target_url, attempt = attempt, status = status or null,
      error = err or null, outcome = outcome,
      retry_in = outcome == "retry" and RETRY_DELAYS[attempt] or null,
      timestamp = ts, signature = sig, body = ev.body, response = excerpt or null,
    })
    if outcome ~= "retry" then return end
    ngx.sleep(RETRY_DELAYS[attempt])
  end
end

-- The timer: the batch's events in order.
local function deliver_batch(premature, dest, batch)
  for _, ev in ipairs(batch) do
    if premature or ngx.worker.exiting() then
      record(dest.id, {
        event_id = ev.event_id, webhook_id = ev.webhook_id, event_type = ev.event_type,
        target_url = dest.target_url, attempt = 0, status = null, outcome = "failed",
        error = "not delivered: nginx is shutting down",
      })
    else
      local ok, err = pcall(deliver_one, dest, ev)
      if not ok then ngx.log(ngx.ERR, "sim: webhook delivery: ", tostring(err)) end
    end
    pending(dest.id, -1)
  end
end

-- Queueing and flushing --------------------------------------------------------------------

-- Whether namespace st has ever had a subscription (checked once per request):
-- without one, events are not even built, so the API's speed is unchanged.
function _M.active(st)
  local a = st._webhooks
  if a == nil then
    a = st:len("webhooks") > 0
    st._webhooks = a
  end
  return a
end

-- Queues an event on the request's store object st. line: our phone number the
-- event is about (for the subscriptions' phone_numbers filter). data: the event's
-- data, or a function that makes it (called only when there are subscriptions).
function _M.queue(st, event_type, line, data)
  if not _M.active(st) then return end
  if type(data) == "function" then data = data() end
  local events = st._events
  if not events then
    events = {}
    st._events = events
  end
  local event_id = C.uuid()
  events[#events + 1] = {
    event_type = event_type, line = line, event_id = event_id,
    webhook_id = "msg_" .. gsub(ngx.encode_base64(C.random_bytes(18)), "[+/]", "x"),
    body = json.encode({
      api_version = _M.API_VERSION, created_at = C.iso(), data = data, event_id = event_id,
      event_type = event_type, partner_id = _M.PARTNER_ID, trace_id = C.trace_id(),
      webhook_version = _M.WEBHOOK_VERSION,
    }),
  }
end

local function wants(s, ev)
  local found = false
  for _, e in ipairs(s.subscribed_events) do
    if e == ev.event_type then found = true break end
  end
  if not found then return false end
  local numbers = s.phone_numbers
  if numbers == nil or numbers == null or #numbers == 0 then return true end
  for _, n in ipairs(numbers) do
    if n == ev.line then return true end
  end
  return false
end

-- After a successful request: hands the queued events to the subscriptions of
-- the namespace that want them (one timer per subscription).
function _M.flush(st)
  local events = st._events
  if not events then return end
  st._events = nil
  local n = st:len("webhooks")
  for i = 1, n do
    local id = st:at("webhooks", i)
    local s = id and st:get("webhook", id)
    if s and s.is_active == true and type(s._secret) == "string" then
      local batch = {}
      for _, ev in ipairs(events) do
        if wants(s, ev) then batch[#batch + 1] = ev end
      end
      if #batch > 0 then
        local target = _M.parse_target(s.target_url)
        local dest = { id = s.id, target_url = s.target_url, target = target, key = _M.secret_key(s._secret) }
        local why
        if not target or not target.loopback then
          why = "skipped: the simulator delivers only to loopback targets (127.0.0.0/8, localhost)"
        elseif not dest.key or dest.key == "" then
          why = "skipped: the subscription's secret is not base64"
        end
        if why then
          for _, ev in ipairs(batch) do
            record(s.id, {
              event_id = ev.event_id, webhook_id = ev.webhook_id, event_type = ev.event_type,
              target_url = s.target_url, attempt = 0, status = null, outcome = "skipped",
              error = why, body = ev.body,
            })
          end
        else
          pending(s.id, #batch)
          local ok, err = ngx.timer.at(0, deliver_batch, dest, batch)
          if not ok then
            pending(s.id, -#batch)
            for _, ev in ipairs(batch) do
              record(s.id, {
                event_id = ev.event_id, webhook_id = ev.webhook_id, event_type = ev.event_type,
                target_url = s.target_url, attempt = 0, status = null, outcome = "failed",
                error = "not delivered: no timer (" .. tostring(err) .. ")", body = ev.body,
              })
            end
          end
        end
      end
    end
  end
end

return _M
