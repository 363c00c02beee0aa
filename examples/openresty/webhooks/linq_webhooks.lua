-- Receiving Linq webhooks in nginx: the handlers of examples/openresty/webhooks/nginx.conf.
--
-- receive() is the content handler of the webhook location. It
--   1. reads the raw body (nginx.conf keeps it in memory; a temp file is read too),
--   2. verifies it with a per-worker linq.webhook (secret from LINQ_WEBHOOK_SECRET):
--      the webhook-* headers, a timestamp within 5 minutes and the HMAC-SHA256
--      signature, and remembers the webhook-id in lua_shared_dict linq_webhook_ids
--      (every worker sees it) until the message could no longer pass the timestamp check,
--   3. answers at once:
--        204  verified; the event goes to M.handlers from a timer, after the answer
--        204  a replay (a webhook-id already accepted): Linq retries until it gets a 2xx,
--             so the delivery is acknowledged again but not handled again
--        401  no matching signature (a wrong secret, or not from Linq)
--        400  missing headers, a timestamp that is not a number or more than 5 minutes
--             off, a signed body that is not JSON
--        500  the secret is not configured, or the replay store failed: Linq retries
--      A refusal is logged (ngx.WARN) with its reason and the webhook-id, never with the
--      secret, the signature or the body.
--   4. hands the event to M.handlers[event.event_type] in an ngx.timer.at, where the
--      linq client may call the API over cosockets. On message.received the example
--      replies in the same chat with send_message, through a per-worker linq.new client
--      (key and base URL from LINQ_API_V3_API_KEY and LINQ_API_V3_BASE_URL).
--
-- Delivery is at least once: the same event can come again under a new webhook-id.
-- The reply carries message.idempotency_key = "reply-" .. event_id, so the API sends
-- one reply per event however often it arrives. An event is acknowledged before it
-- is handled: a handler that must never lose one should store it durably first.
--
-- stats() serves the counters of lua_shared_dict linq_webhook_stats as JSON
-- (verified, verified:<type>, handled:<type>, failed:<type>, replayed,
-- refused:<reason>, replies); nginx.conf lets only 127.0.0.1 read it.
local linq = require("linq")
local cjson = require("cjson.safe")

local M = {}

local SEEN = "linq_webhook_ids"     -- lua_shared_dict: webhook-ids already accepted
local STATS = "linq_webhook_stats"  -- lua_shared_dict: counters (optional)

local verifier, client               -- one of each per worker

local function count(name)
  local stats = ngx.shared[STATS]
  if stats then stats:incr(name, 1, 0) end
end

local function get_verifier()
  if not verifier then
    local ok, wh = pcall(linq.webhook)   -- nil secret: LINQ_WEBHOOK_SECRET
    if not ok then return nil, tostring(wh) end   -- linq's message never quotes the secret
    verifier = wh
  end
  return verifier
end

local function get_client()
  client = client or linq.new()   -- LINQ_API_V3_API_KEY, LINQ_API_V3_BASE_URL
  return client
end

-- What to do with each event type, in a timer after the 204. Add your own here.
M.handlers = {}

-- At most n bytes of s, not cutting a UTF-8 character in two.
local function clip(s, n)
  if #s <= n then return s end
  local i = n
  while i > 0 and s:byte(i + 1) >= 0x80 and s:byte(i + 1) < 0xC0 do i = i - 1 end
  return s:sub(1, i)
end

-- A person wrote to us: answer in the same chat.
M.handlers["message.received"] = function(event)
  local data = event.data
  if data.direction ~= "inbound" then return end
  local text
  for _, part in ipairs(data.parts or {}) do
    if part.type == "text" then
      text = part.value
      break
    end
  end
  local reply = text and ("Thanks! You wrote: " .. clip(text, 200)) or "Thanks for your message!"
  local res = get_client():send_message(data.chat.id, {
    message = {
      parts = { { type = "text", value = reply } },
      idempotency_key = "reply-" .. event.event_id,   -- one reply per event, however often it comes
    },
  })
  count("replies")
  ngx.log(ngx.INFO, "linq webhook: replied in chat ", data.chat.id, " with message ", res.message.id)
end

-- Our own messages and new chats: noted only.
local function note(event)
  ngx.log(ngx.INFO, "linq webhook: ", event.event_type, " ", tostring(event.data.id))
end
M.handlers["message.sent"] = note
M.handlers["message.delivered"] = note
M.handlers["chat.created"] = note

local function dispatch(premature, event)
  local etype = event.event_type
  if premature then   -- nginx is shutting down: acknowledged, but not handled
    ngx.log(ngx.WARN, "linq webhook: ", etype, " ", event.event_id, " not handled: nginx is exiting")
    return
  end
  local handler = M.handlers[etype]
  if not handler then
    count("ignored:" .. etype)
    return
  end
  local ok, err = pcall(handler, event)
  if ok then
    count("handled:" .. etype)
  else
    count("failed:" .. etype)
    ngx.log(ngx.ERR, "linq webhook: the handler of ", etype, " ", event.event_id, " failed: ", tostring(err))
  end
end

local REFUSAL_STATUS = { no_matching_signature = 401 }   -- all other reasons: 400

-- The webhook-id for the log: as sent when it looks like an id, else a placeholder.
local function loggable_id(headers)
  local id = headers["webhook-id"]
  if type(id) == "string" and #id <= 100 and id:find("^[%w_%-.:]+$") then return id end
  return "(absent or unusual)"
end

local function raw_body()
  ngx.req.read_body()
  local body = ngx.req.get_body_data()
  if body then return body end
  local path = ngx.req.get_body_file()   -- only when the body outgrew client_body_buffer_size
  if not path then return "" end
  local f = io.open(path, "rb")
  if not f then return "" end
  body = f:read("*a")
  f:close()
  return body or ""
end

-- content_by_lua: POST from Linq.
function M.receive()
  if ngx.req.get_method() ~= "POST" then
    ngx.header["Allow"] = "POST"
    return ngx.exit(405)
  end
  local wh, err = get_verifier()
  if not wh then
    ngx.log(ngx.ERR, "linq webhook: no verifier: ", err)
    return ngx.exit(500)
  end
  local body = raw_body()
  local headers = ngx.req.get_headers()
  local ok, event = pcall(wh.verify, wh, body, headers, { seen = SEEN })
  if not ok then
    local e = event
    if linq.is_error(e) and e.type == "WebhookVerificationError" then
      if e.reason == "replayed" then
        count("replayed")
        ngx.log(ngx.INFO, "linq webhook: replay of ", loggable_id(headers), " acknowledged, not handled again")
        return ngx.exit(204)
      end
      count("refused:" .. tostring(e.reason))
      ngx.log(ngx.WARN, "linq webhook refused (", tostring(e.reason), ": ", tostring(e.message),
              "), webhook-id ", loggable_id(headers))
      return ngx.exit(REFUSAL_STATUS[e.reason] or 400)
    end
    -- Not a verdict on the message (e.g. the shared dict could not store the id): a
    -- 5xx makes Linq deliver it again later.
    ngx.log(ngx.ERR, "linq webhook: could not verify ", loggable_id(headers), ": ", tostring(e))
    return ngx.exit(500)
  end
  count("verified")
  count("verified:" .. tostring(event.event_type))
  local started, terr = ngx.timer.at(0, dispatch, event)
  if not started then
    -- Not handed over: forget the id so that Linq's next attempt is not taken for a replay.
    local id = headers["webhook-id"]
    if type(id) == "string" then ngx.shared[SEEN]:delete(id) end
    ngx.log(ngx.ERR, "linq webhook: no timer for ", loggable_id(headers), ": ", terr)
    return ngx.exit(503)
  end
  return ngx.exit(204)
end

-- content_by_lua: the counters as JSON.
function M.stats()
  local out = {}
  local stats = ngx.shared[STATS]
  if stats then
    for _, k in ipairs(stats:get_keys(1000)) do out[k] = stats:get(k) end
  end
  ngx.header["Content-Type"] = "application/json"
  ngx.say(cjson.encode(out))
end

-- init_worker_by_lua: makes the worker's verifier and client now (no I/O), so a
-- missing secret or key shows in the error log at start rather than on the first POST.
function M.init_worker()
  local _, err = get_verifier()
  if err then ngx.log(ngx.ERR, "linq webhook: ", err) end
  local ok, cerr = pcall(get_client)
  if not ok then ngx.log(ngx.ERR, "linq webhook: no API client: ", tostring(cerr)) end
end

return M
