-- sim.lua: request handler of the local Linq API simulator (nginx + ngx_lua).
--
-- Loaded by the nginx.conf that sim/start writes:
--   init_by_lua_block    { require("sim").init() }   (master, once)
--   content_by_lua_block { require("sim").handle() } (every request)
--
-- URL scheme: <base>/<mode...>/v3/<api path>. The raw request path is split at
-- the first "/v3/"; the segments before it select the mode (see README.md).
-- The modes decide how an answer is sent (at once, late, dripped, cut, ...);
-- the answer itself comes from the stateful API in router.lua (api/*.lua).

-- luacheck: std ngx_lua

local cjson = require("cjson.safe")
local config = require("config")
local store = require("store")
local router = require("router")
local reqlog = require("reqlog")
local upload = require("upload")
local delivery = require("delivery")

local ngx = ngx
local find, sub, rep, format, match, byte, lower =
  string.find, string.sub, string.rep, string.format, string.match, string.byte, string.lower
local tonumber, tostring = tonumber, tostring

local _M = {}

local DEFAULT_KEY = "sim-test-key"
local PIECE = 65536 -- chunk size of the big modes

local null = cjson.null

-- Set by init().
local auth_expected  -- "Bearer <key>"
local list_body      -- phone-number list, served as is (the fast path)
local hits           -- lua_shared_dict sim_hits

local DEFAULT_NS = "default" -- the namespace of api/partner

-- Error envelopes -------------------------------------------------------------

local ERRORS = {
  [400] = { 1001, "Bad request" },
  [401] = { 2004, "Unauthorized - missing or invalid authentication token" },
  [403] = { 2005, "Forbidden" },
  [404] = { 4004, "Not found" },
  [409] = { 4009, "Conflict" },
  [422] = { 1002, "Unprocessable entity" },
  [429] = { 3008, "Too many requests" },
  [500] = { 3006, "Internal server error" },
  [502] = { 3007, "Bad gateway" },
  [503] = { 3009, "Service unavailable" },
}

local envelopes = {} -- status -> body up to the trace id (200..599)

-- The envelope of a status (fault modes, 401, unknown modes), with the
-- request's trace id (= the x-trace-id header that nginx.conf adds).
local function envelope_head(status)
  local e = envelopes[status]
  if not e then
    local code, msg = 9999, "Simulated status"
    local info = ERRORS[status]
    if info then code, msg = info[1], info[2] end
    e = format('{"error":{"status":%d,"code":%d,"message":"%s",'
      .. '"doc_url":"https://docs.linqapp.com/error/codes/%sxxx/%d/"},'
      .. '"success":false,"trace_id":"', status, code, msg, sub(tostring(code), 1, 1), code)
    envelopes[status] = e
  end
  return e
end

local function envelope(status)
  return envelope_head(status) .. ngx.var.request_id .. '"}'
end

-- Canned bodies -----------------------------------------------------------------

local HTML502 = table.concat({
  "<html>\r\n",
  "<head><title>502 Bad Gateway</title></head>\r\n",
  "<body>\r\n",
  "<center><h1>502 Bad Gateway</h1></center>\r\n",
  "<hr><center>cloudproxy</center>\r\n",
  "</body>\r\n",
  "</html>\r\n",
  "<!-- a padding to disable MSIE and Chrome friendly error page -->\r\n",
  "<!-- a padding to disable MSIE and Chrome friendly error page -->\r\n",
})

local BODIES = {
  empty = { "", "application/json" },
  malformed = { '{"phone_numbers": [{"id": "550e', "application/json" },
  html = { "<!DOCTYPE html>\n<html><head><title>Service Error</title></head>"
    .. "<body><h1>Something went wrong</h1><p>The server encountered a "
    .. "temporary error and could not complete your request.</p></body>"
    .. "</html>\n", "text/html" },
  text = { "upstream connect error or disconnect/reset before headers",
    "text/plain" },
  ["json-other"] = { '{"message":"plain message","detail":"not the envelope"}',
    "application/json" },
  -- envelopes whose fields are out of the ordinary (found by fuzzing the client)
  ["code-huge"] = { '{"error":{"status":500,"code":1e300,"message":"huge code"},"success":false}',
    "application/json" },
  ["code-inf"] = { '{"error":{"status":500,"code":1e999,"message":"infinite code"},"success":false}',
    "application/json" },
  ["message-lines"] = { '{"error":{"status":500,"code":3006,"message":"line one\r\nline two\ttab",'
    .. '"doc_url":"https://docs.linqapp.com/x\ny"},"success":false}', "application/json" },
  -- a list page whose next_cursor is always the same: a server that would make a
  -- client loop forever
  ["page-loop"] = { '{"chats":[{"id":"c1"}],"messages":[{"id":"m1"}],"next_cursor":"again"}',
    "application/json" },
  -- what Node writes for an emoji cut in half (a lone high surrogate), beside a
  -- whole pair
  ["lone-surrogate"] = { '{"message":"cut emoji: \\ud83d end","pair":"\\ud83d\\ude00"}',
    "application/json" },
  -- valid JSON that is not an object or an array
  scalar = { '"just a string"', "application/json" },
  -- a number no double holds (a decoder would make it infinity), and one that is
  -- only text in a string
  overflow = { '{"phone_numbers":[],"n":1e400}', "application/json" },
  ["overflow-text"] = { '{"phone_numbers":[],"note":"1e400"}', "application/json" },
  -- nested, invalid-utf8, huge-string, huge-envelope are built in init()
}

-- Helpers -------------------------------------------------------------------------

local function read_file(path)
  local f, err = io.open(path, "rb")
  if not f then return nil, err end
  local s = f:read("*a")
  f:close()
  return s
end

-- Sends a complete response with Content-Length (none on a 204, as HTTP
-- wants). ctype nil = default_type (application/json, set in nginx.conf).
local function send(status, body, ctype)
  ngx.status = status
  local h = ngx.header
  if ctype then h["Content-Type"] = ctype end
  if status == 204 then return end
  h["Content-Length"] = #body
  ngx.print(body)
end

local function fail(status)
  return send(status, envelope(status))
end

local function split(s)
  local t, n, i = {}, 0, 1
  if s == "" then return t, 0 end
  while true do
    local j = find(s, "/", i, true)
    n = n + 1
    if not j then
      t[n] = sub(s, i)
      return t, n
    end
    t[n] = sub(s, i, j - 1)
    i = j + 1
  end
end

-- Percent-decoding of a path segment that keeps "+" (ngx.unescape_uri
-- would turn it into a space).
local function path_unescape(s)
  return (string.gsub(s, "%%(%x%x)", function(h) return string.char(tonumber(h, 16)) end))
end

-- Parses the trailing "name=value" segments from index first on. Returns
-- the options { id = ID, ns = namespace, no_rid = true, hdrs = { name, value,
-- name, value ... } } or nil when a segment does not parse. id=, ns= and
-- no-request-id= are the simulator's own; any other name is a response header.
local function params(segs, first, n)
  local o = { ns = DEFAULT_NS }
  for i = first, n do
    local name, value = match(segs[i], "^([%w!#%$%%&'%*%+%-%.%^_`|~]+)=(.*)$")
    if not name then return nil end
    if name == "id" then
      if value == "" then return nil end
      o.id = value
    elseif name == "ns" then
      value = path_unescape(value)
      if not router.valid_ns(value) then return nil end
      o.ns = value
    elseif name == "no-request-id" then
      o.no_rid = value ~= "0"
    else
      o.hdrs = o.hdrs or {}
      o.hdrs[#o.hdrs + 1] = name
      o.hdrs[#o.hdrs + 1] = ngx.unescape_uri(value)
    end
  end
  return o
end

local function set_headers(o)
  local hdrs = o.hdrs
  if not hdrs then return end
  local h = ngx.header
  for i = 1, #hdrs, 2 do
    h[hdrs[i]] = hdrs[i + 1]
  end
end

-- Counts (hits/<ID>) and records (log/<ID>) a request of a mode with id=<ID>;
-- with no-request-id=1 also drops x-request-id (nginx.conf's add_header
-- skips an empty $sim_rid). Returns the count, or nil without an id.
local function note(o)
  if o.no_rid then ngx.var.sim_rid = "" end
  local id = o.id
  if not id then return nil end
  local c = hits:incr(id, 1, 0)
  reqlog.record(id)
  return c
end

local function authorized()
  return ngx.var.http_authorization == auth_expected
end

local function uint(s)
  if not s or not find(s, "^%d+$") or #s > 15 then return nil end
  return tonumber(s)
end

local function http_status(s)
  if not s or not find(s, "^%d%d%d$") then return nil end
  local n = tonumber(s)
  if n < 200 or n > 599 then return nil end
  return n
end

local function request_body()
  ngx.req.read_body()
  local data = ngx.req.get_body_data()
  if data then return data end
  local file = ngx.req.get_body_file()
  if file then return read_file(file) end
  return nil
end

-- The normal API ----------------------------------------------------------------

-- status, body, content type (nil = JSON) of the stateful API for api_path
-- in namespace ns.
local function api(api_path, ns)
  return router.handle(ns or DEFAULT_NS, api_path)
end

-- Modes ----------------------------------------------------------------------------
-- Each gets (segs, n, api_path, path, query).

-- The common start of a mode: parses the name=value segments from `first` on;
-- answers 404 when `valid` is false or they do not parse, counts and logs the
-- id, answers 401 without the key, sets the extra headers. Returns the
-- options (see params) when the mode goes on, else nil.
local function admit(valid, segs, first, n)
  local o = params(segs, first, n)
  if not valid or not o then
    fail(404)
    return nil
  end
  note(o)
  if not authorized() then
    fail(401)
    return nil
  end
  set_headers(o)
  return o
end

local MODES = {}

-- status/<CODE>[/id=<ID>][/<header>=<value>...]
MODES.status = function(segs, n)
  local status = http_status(segs[2])
  if not admit(status, segs, 3, n) then return end
  return fail(status)
end

-- flaky/<N>/<CODE>/id=<ID>[/<header>=<value>...]
MODES.flaky = function(segs, n, api_path)
  local times, status = uint(segs[2]), http_status(segs[3])
  local o = params(segs, 4, n)
  if not times or not status or not o or not o.id then return fail(404) end
  local c = note(o)
  if not authorized() then return fail(401) end
  if c <= times then
    set_headers(o)
    return fail(status)
  end
  return send(api(api_path, o.ns))
end

-- lag/<N>/<MS>/id=<ID>[/...]: the first N requests for ID are answered by the
-- API at once (their state changes happen), but the answer is only sent after
-- MS ms; later ones at once. A client that times out and retries must not
-- store twice.
MODES.lag = function(segs, n, api_path)
  local times, ms = uint(segs[2]), uint(segs[3])
  local o = params(segs, 4, n)
  if not times or not ms or not o or not o.id then return fail(404) end
  local c = note(o)
  if not authorized() then return fail(401) end
  set_headers(o)
  local status, body, ctype = api(api_path, o.ns)
  if c <= times and ms > 0 then ngx.sleep(ms / 1000) end
  return send(status, body, ctype)
end

-- hangup-reused[/id=<ID>][/...]: a request that arrives on a kept-alive connection
-- is handled by the normal API (its state changes happen) and the connection is then
-- closed without a byte of reply, as a server that crashes after acting does; the
-- first request of a connection is answered. A client that silently sends again on
-- a fresh connection acts twice.
MODES["hangup-reused"] = function(segs, n, api_path)
  local o = admit(true, segs, 2, n)
  if not o then return end
  local status, body, ctype = api(api_path, o.ns)
  if tonumber(ngx.var.connection_requests) > 1 then return ngx.exit(444) end
  return send(status, body, ctype)
end

-- ns/<name>[/...]: the normal API in namespace <name> (its own empty store;
-- the phone numbers of the data file are in every namespace).
MODES.ns = function(segs, n, api_path)
  local name = segs[2] and path_unescape(segs[2])
  local o = admit(name and router.valid_ns(name), segs, 3, n)
  if not o then return end
  return send(api(api_path, name))
end

-- html502[/id=<ID>]
MODES.html502 = function(segs, n)
  if not admit(true, segs, 2, n) then return end
  return send(502, HTML502, "text/html")
end

-- body/<CODE>/<KIND>[/id=<ID>]
MODES.body = function(segs, n)
  local status, kind = http_status(segs[2]), BODIES[segs[3] or ""]
  if not admit(status and kind, segs, 4, n) then return end
  return send(status, kind[1], kind[2])
end

local BIG_HEAD, BIG_TAIL = '{"phone_numbers":[],"pad":"', '"}'
local PAD_PIECE = rep("x", PIECE)

-- big/<BYTES>, big-chunked/<BYTES>, big-invalid/<BYTES> (the same without its
-- closing "}, so not JSON)
local function big(segs, n, chunked, tail)
  local bytes = uint(segs[2])
  if not admit(bytes and bytes <= 2 ^ 40, segs, 3, n) then return end
  local pad = bytes - #BIG_HEAD - #tail
  if pad < 0 then pad = 0 end
  ngx.status = 200
  if not chunked then
    ngx.header["Content-Length"] = format("%.0f", #BIG_HEAD + pad + #tail)
  end
  if ngx.req.get_method() == "HEAD" then return end
  -- first piece carries the head so every piece is PIECE bytes
  local first = PIECE - #BIG_HEAD
  if pad <= first then
    ngx.print(BIG_HEAD .. sub(PAD_PIECE, 1, pad) .. tail)
    return
  end
  ngx.print(BIG_HEAD, sub(PAD_PIECE, 1, first))
  if not ngx.flush(true) then return end
  pad = pad - first
  while pad > PIECE do
    ngx.print(PAD_PIECE)
    if not ngx.flush(true) then return end
    pad = pad - PIECE
  end
  ngx.print(sub(PAD_PIECE, 1, pad), tail)
end

MODES.big = function(segs, n) return big(segs, n, false, BIG_TAIL) end
MODES["big-chunked"] = function(segs, n) return big(segs, n, true, BIG_TAIL) end
MODES["big-invalid"] = function(segs, n) return big(segs, n, false, "") end

-- reset[/id=<ID>]
MODES.reset = function(segs, n)
  if not admit(true, segs, 2, n) then return end
  return ngx.exit(444)
end

-- slow/<MS>[/id=<ID>]
MODES.slow = function(segs, n, api_path)
  local ms = uint(segs[2])
  local o = admit(ms, segs, 3, n)
  if not o then return end
  if ms > 0 then ngx.sleep(ms / 1000) end
  return send(api(api_path, o.ns))
end

-- drip/<MS>[/id=<ID>]
MODES.drip = function(segs, n, api_path)
  local ms = uint(segs[2])
  local o = admit(ms, segs, 3, n)
  if not o then return end
  local status, body, ctype = api(api_path, o.ns)
  ngx.status = status
  if ctype then ngx.header["Content-Type"] = ctype end
  ngx.header["Content-Length"] = #body
  ngx.send_headers()
  if not ngx.flush(true) then return end
  if ngx.req.get_method() == "HEAD" then return end
  local delay = ms / 1000
  for i = 1, #body do
    if delay > 0 then ngx.sleep(delay) end
    ngx.print(sub(body, i, i))
    if not ngx.flush(true) then return end
  end
end

-- Sends status, headers (Content-Length = clen) and body, waits until it is in
-- the socket, then closes the connection (444: no further bytes, no keepalive).
local function send_and_close(status, body, clen, ctype)
  ngx.status = status
  if ctype then ngx.header["Content-Type"] = ctype end
  ngx.header["Content-Length"] = clen
  ngx.send_headers()
  if ngx.req.get_method() ~= "HEAD" and body ~= "" then ngx.print(body) end
  ngx.flush(true)
  return ngx.exit(444)
end

-- cut/<BYTES>[/id=<ID>]: the full Content-Length, then only the first BYTES
-- bytes (at most all but the last one) and a closed connection (curl exit 18).
MODES.cut = function(segs, n, api_path)
  local bytes = uint(segs[2])
  local o = admit(bytes, segs, 3, n)
  if not o then return end
  local status, body, ctype = api(api_path, o.ns)
  if bytes > #body - 1 then bytes = #body - 1 end
  if bytes < 0 then bytes = 0 end
  return send_and_close(status, sub(body, 1, bytes), #body, ctype)
end

-- short[/id=<ID>]: Content-Length = body + 100, the whole body, then a closed
-- connection (curl exit 18).
MODES.short = function(segs, n, api_path)
  local o = admit(true, segs, 2, n)
  if not o then return end
  local status, body, ctype = api(api_path, o.ns)
  return send_and_close(status, body, #body + 100, ctype)
end

local MAX_HEADER = 2097152 -- bigheader's limit (2 MiB)

-- bigheader/<BYTES>[/id=<ID>]: the normal answer plus "x-padding: <BYTES x>".
MODES.bigheader = function(segs, n, api_path)
  local bytes = uint(segs[2])
  local o = admit(bytes and bytes >= 1 and bytes <= MAX_HEADER, segs, 3, n)
  if not o then return end
  ngx.header["x-padding"] = rep("x", bytes)
  return send(api(api_path, o.ns))
end

-- headers/<N>/<BYTES>[/id=<ID>]: the normal answer plus N headers "x-pad-<i>: <BYTES x>":
-- a header block too large in total with no line too long.
MODES.headers = function(segs, n, api_path)
  local count, bytes = uint(segs[2]), uint(segs[3])
  local o = admit(count and bytes and count >= 1 and count <= 1000 and bytes >= 1
                  and count * bytes <= MAX_HEADER, segs, 4, n)
  if not o then return end
  local pad = rep("x", bytes)
  for i = 1, count do ngx.header["x-pad-" .. i] = pad end
  return send(api(api_path, o.ns))
end

-- gzip[/id=<ID>]: the normal answer; nginx.conf's "location /gzip/" has the
-- gzip filter on (Content-Encoding: gzip when Accept-Encoding allows it).
MODES.gzip = function(segs, n, api_path)
  local o = admit(true, segs, 2, n)
  if not o then return end
  return send(api(api_path, o.ns))
end

local CHUNKS = 4 -- pieces of the chunked mode

-- chunked[/id=<ID>]: the normal answer without Content-Length, in CHUNKS
-- flushed pieces (Transfer-Encoding: chunked).
MODES.chunked = function(segs, n, api_path)
  local o = admit(true, segs, 2, n)
  if not o then return end
  local status, body, ctype = api(api_path, o.ns)
  ngx.status = status
  if ctype then ngx.header["Content-Type"] = ctype end
  ngx.send_headers()
  if ngx.req.get_method() == "HEAD" then return end
  local size = math.ceil(#body / CHUNKS)
  if size < 1 then size = 1 end
  for i = 1, #body, size do
    ngx.print(sub(body, i, i + size - 1))
    if not ngx.flush(true) then return end
  end
end

-- echo[/id=<ID>] (no auth)
MODES.echo = function(segs, n, api_path, path, query)
  local o = params(segs, 2, n)
  if not o then return fail(404) end
  note(o)
  local args = ngx.req.get_uri_args(100)
  local headers = ngx.req.get_headers(100)
  local body = request_body()
  local out = cjson.encode({
    method = ngx.req.get_method(),
    http_version = ngx.req.http_version(),
    connection = tonumber(ngx.var.connection),  -- same number: the connection was reused
    path = path,
    api_path = api_path or null,
    query = query,
    args = args,
    headers = headers,
    body = body or null,
  })
  if not out then return fail(500) end
  return send(200, out)
end

-- reflect/<CODE>[/<PAD>[/<STYLE>]][/id=<ID>]: a careless server that quotes the
-- request's Authorization header back, in a plain-text body after PAD bytes of
-- padding and in an x-reflected header (for the client's redaction, wherever an
-- excerpt would cut).  STYLE: dots (default), spaces (runs of white space, which
-- an excerpt folds), repeat (the quote PAD times over instead of padding), and the
-- forms other servers write a key in: json (a JSON body, "/" escaped as "\/"),
-- percent (percent-encoded), lower (lower-cased).  The key is also sent as the
-- name of a header, x-key-<key>, when it is made of header-name characters.
local REFLECT_STYLES = {
  dots = true, spaces = true, ["repeat"] = true, json = true, percent = true, lower = true,
}
MODES.reflect = function(segs, n)
  local status = http_status(segs[2])
  local pad = segs[3] and uint(segs[3])
  local style = pad and segs[4] and REFLECT_STYLES[segs[4]] and segs[4]
  local o = params(segs, 3 + (pad and 1 or 0) + (style and 1 or 0), n)
  if not status or not o or (pad and pad > 65536) then return fail(404) end
  note(o)
  local sent = ngx.var.http_authorization or "nothing"
  local key = sent:match("^Bearer (.+)$")
  if style == "percent" then
    sent = ngx.escape_uri(sent)
  elseif style == "lower" then
    sent = lower(sent)
  end
  local quote = "you sent: " .. sent
  local body
  if style == "json" then
    body = '{"message":"' .. rep(".", pad or 0) .. quote:gsub("/", "\\/") .. '"}'
    ngx.header["x-reflected"] = quote
    if key and find(key, "^[%w!#%$%%&'%*%+%-%.%^_`|~]+$") then ngx.header["x-key-" .. key] = "1" end
    return send(status, body, "application/json")
  elseif style == "repeat" then
    body = rep(quote .. " ", pad) .. quote
  elseif style == "spaces" then
    body = rep("\n    ", math.floor(pad / 5)) .. quote
  else
    body = rep(".", pad or 0) .. quote
  end
  ngx.header["x-reflected"] = quote
  if key and find(key, "^[%w!#%$%%&'%*%+%-%.%^_`|~]+$") then ngx.header["x-key-" .. key] = "1" end
  return send(status, body, "text/plain")
end

-- bare/<CODE>[/id=<ID>]: a status line and not one header field, then the
-- connection closes (a reply some proxies give).
MODES.bare = function(segs, n)
  local status = http_status(segs[2])
  local o = params(segs, 3, n)
  if not status or not o then return fail(404) end
  note(o)
  local sock = ngx.req.socket(true)
  if not sock then return fail(500) end
  sock:send(format("HTTP/1.1 %d Bare\r\n\r\n", status))
  return ngx.exit(444)
end

-- trailer[/id=<ID>] (no auth): 200, a chunked JSON body, then trailer fields
-- (x-trailer, and a Content-Length far over any size cap): trailers are not
-- headers of the reply, and must change nothing about it.
MODES.trailer = function(segs, n)
  local o = params(segs, 2, n)
  if not o then return fail(404) end
  note(o)
  local sock = ngx.req.socket(true)
  if not sock then return fail(500) end
  local body = '{"phone_numbers":[]}'
  sock:send(format("HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n" ..
                   "Transfer-Encoding: chunked\r\nTrailer: x-trailer\r\n\r\n" ..
                   "%x\r\n%s\r\n0\r\nx-trailer: t\r\nContent-Length: 99999999999\r\n\r\n",
                   #body, body))
  return ngx.exit(444)
end

-- traced/<CODE>[/id=<ID>] (no auth): CODE with a JSON body whose top-level
-- trace_id is the only id of the reply (no x-request-id, no x-trace-id header).
MODES.traced = function(segs, n)
  local status = http_status(segs[2])
  local o = params(segs, 3, n)
  if not status or not o then return fail(404) end
  note(o)
  local sock = ngx.req.socket(true)
  if not sock then return fail(500) end
  local body = status < 300 and '{"phone_numbers":[],"trace_id":"trace-in-body"}'
    or '{"error":{"status":' .. status .. ',"code":3006,"message":"traced"},' ..
       '"success":false,"trace_id":"trace-in-body"}'
  sock:send(format("HTTP/1.1 %d Traced\r\nContent-Type: application/json\r\n" ..
                   "Content-Length: %d\r\nConnection: close\r\n\r\n%s", status, #body, body))
  return ngx.exit(444)
end

-- hits/<ID> (no auth); DELETE resets the counter to 0
MODES.hits = function(segs, n)
  local id = segs[2]
  if n ~= 2 or id == "" then return fail(404) end
  local c
  if ngx.req.get_method() == "DELETE" then
    hits:delete(id)
    c = 0
  else
    c = hits:get(id) or 0
  end
  return send(200, format('{"hits":%d}', c))
end

-- log/<ID> (no auth, /v3/... optional): the requests recorded for id=<ID>
-- (reqlog.lua); DELETE clears them.
MODES.log = function(segs, n)
  local id = segs[2]
  if n ~= 2 or id == "" then return fail(404) end
  return send(reqlog.serve(id))
end

-- webhook-log/<subscription_id> (no auth, /v3/... optional): every delivery
-- attempt to that subscription (delivery.lua); DELETE clears them.
MODES["webhook-log"] = function(segs, n)
  local id = segs[2]
  if n ~= 2 or id == "" then return fail(404) end
  return send(delivery.serve(path_unescape(id)))
end

-- upload/<id> (PUT), upload/<id>/headers, download/<id>, vcf/<n>.vcf: no auth,
-- no /v3/ (upload.lua).
MODES.upload = function(segs, n, api_path)
  if api_path then return fail(404) end
  return upload.upload(segs, n)
end
MODES.download = function(segs, n, api_path)
  if api_path then return fail(404) end
  return upload.download(segs, n)
end
MODES.vcf = function(segs, n, api_path)
  if api_path then return fail(404) end
  return upload.vcf(segs, n)
end

local NO_API_PATH_OK = { trailer = true,
  echo = true, hits = true, log = true, upload = true, download = true, vcf = true,
  ["webhook-log"] = true,
}

-- Entry points ---------------------------------------------------------------------

function _M.handle()
  local uri = ngx.var.request_uri
  local q = find(uri, "?", 1, true)
  local path = q and sub(uri, 1, q - 1) or uri
  local query = q and sub(uri, q + 1) or ""
  if byte(path, 1) ~= 47 then return fail(404) end -- not "/..."
  local prefix, api_path
  local v3 = find(path, "/v3/", 1, true)
  if v3 then
    prefix, api_path = sub(path, 2, v3 - 1), sub(path, v3)
  else
    prefix = sub(path, 2)
  end

  if prefix == "api/partner" then -- fast path: the normal API
    if not api_path then return fail(404) end
    if not authorized() then return fail(401) end
    if api_path == "/v3/phone_numbers" then -- benchmarked: no router, no store
      local method = ngx.req.get_method()
      if method == "GET" or method == "HEAD" then return send(200, list_body) end
    end
    return send(api(api_path))
  end

  local segs, n = split(prefix)
  local mode = segs[1]
  local handler = mode and MODES[mode]
  if not handler or (not api_path and not NO_API_PATH_OK[mode]) then
    return fail(404)
  end
  return handler(segs, n, api_path, path, query)
end

local function script_dir()
  local src = debug.getinfo(1, "S").source
  return match(src, "^@(.*)/[^/]*$") or "."
end

-- Runs in the nginx master (init_by_lua). Key and data file come from the
-- environment (declared with `env` in nginx.conf by sim/start).
function _M.init()
  local key = os.getenv("LINQ_SIM_NGX_KEY")
  if not key or key == "" then key = DEFAULT_KEY end
  auth_expected = "Bearer " .. key

  local data = os.getenv("LINQ_SIM_NGX_DATA")
  if not data or data == "" then
    data = script_dir() .. "/data/phone_numbers.json"
  end
  local body, err = read_file(data)
  if not body then error("sim: cannot read data file: " .. tostring(err)) end
  config.load(key, data, body)
  list_body = config.list_body

  hits = ngx.shared.sim_hits
  if not hits then error("sim: lua_shared_dict sim_hits is missing") end
  store.init()
  reqlog.init()
  delivery.init()

  BODIES.nested = { rep("[", 10000) .. rep("]", 10000), "application/json" }
  BODIES["invalid-utf8"] = {
    '{"message":"invalid utf-8 follows: \255\254 end"}', "application/json" }
  BODIES["huge-envelope"] = {
    '{"error":{"status":500,"code":3006,"message":"' .. rep("m", 5 * 1048576) .. '"},"success":false}',
    "application/json" }
  BODIES["huge-string"] = {
    '{"message":"' .. rep("x", 1048576) .. '"}', "application/json" }
  for status = 200, 599 do envelope_head(status) end
end

return _M
