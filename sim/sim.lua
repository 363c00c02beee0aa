-- sim.lua: request handler of the local Linq API simulator (nginx + ngx_lua).
--
-- Loaded by the nginx.conf that sim/start writes:
--   init_by_lua_block    { require("sim").init() }   (master, once)
--   content_by_lua_block { require("sim").handle() } (every request)
--
-- URL scheme: <base>/<mode...>/v3/<api path>. The raw request path is split at
-- the first "/v3/"; the segments before it select the mode (see README.md).

-- luacheck: std ngx_lua

local cjson = require("cjson.safe")

local ngx = ngx
local find, sub, rep, format, match, lower, byte =
  string.find, string.sub, string.rep, string.format, string.match,
  string.lower, string.byte
local tonumber, tostring, type = tonumber, tostring, type

local _M = {}

local DEFAULT_KEY = "sim-test-key"
local PIECE = 65536 -- chunk size of the big modes

local null = cjson.null

-- Set by init().
local auth_expected  -- "Bearer <key>"
local list_body      -- phone-number list, served as is
local numbers = {}   -- id -> phone_number, for PUT
local hits           -- lua_shared_dict sim_hits

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

local envelopes = {} -- status -> body (at most 400 entries: 200..599)

local function envelope(status)
  local e = envelopes[status]
  if e then return e end
  local code, msg = 9999, "Simulated status"
  local info = ERRORS[status]
  if info then code, msg = info[1], info[2] end
  e = format('{"error":{"status":%d,"code":%d,"message":"%s",'
    .. '"doc_url":"https://docs.linqapp.com/error/codes/%sxxx/%d/"},'
    .. '"success":false}', status, code, msg, sub(tostring(code), 1, 1), code)
  envelopes[status] = e
  return e
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
  -- nested, invalid-utf8, huge-string are built in init()
}

-- Helpers -------------------------------------------------------------------------

local function read_file(path)
  local f, err = io.open(path, "rb")
  if not f then return nil, err end
  local s = f:read("*a")
  f:close()
  return s
end

-- Sends a complete response with Content-Length. ctype nil = default_type
-- (application/json, set in nginx.conf).
local function send(status, body, ctype)
  ngx.status = status
  local h = ngx.header
  if ctype then h["Content-Type"] = ctype end
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

-- Parses the trailing "name=value" segments from index first on.
-- Returns ok, id, headers (array of name, value, name, value ...).
local function params(segs, first, n)
  local id, hdrs
  for i = first, n do
    local name, value = match(segs[i], "^([%w!#%$%%&'%*%+%-%.%^_`|~]+)=(.*)$")
    if not name then return false end
    if name == "id" then
      if value == "" then return false end
      id = value
    else
      hdrs = hdrs or {}
      hdrs[#hdrs + 1] = name
      hdrs[#hdrs + 1] = ngx.unescape_uri(value)
    end
  end
  return true, id, hdrs
end

local function set_headers(hdrs)
  if not hdrs then return end
  local h = ngx.header
  for i = 1, #hdrs, 2 do
    h[hdrs[i]] = hdrs[i + 1]
  end
end

local function count(id)
  if not id then return nil end
  return (hits:incr(id, 1, 0))
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

local function is_json_ctype(ct)
  if type(ct) ~= "string" then return false end
  ct = lower(ct)
  return find(ct, "^%s*application/json%s*$") ~= nil
    or find(ct, "^%s*application/json%s*;") ~= nil
end

local function json_str(s)
  return cjson.encode(s)
end

-- The normal API ----------------------------------------------------------------

local function put_forwarding(id)
  local phone = numbers[id]
  if not phone then return 404, envelope(404) end
  local body = request_body()
  if not body or body == "" then return 400, envelope(400) end
  if not is_json_ctype(ngx.var.content_type) then return 400, envelope(400) end
  local obj = cjson.decode(body)
  if type(obj) ~= "table" then return 400, envelope(400) end
  local fwd = obj.forwarding_number
  if fwd == nil then return 400, envelope(400) end
  if fwd == null or fwd == "" then
    fwd = "null"
  elseif type(fwd) == "string" then
    fwd = json_str(fwd)
  else
    return 400, envelope(400)
  end
  return 200, format('{"id":%s,"forwarding_number":%s,"phone_number":%s}',
    json_str(id), fwd, json_str(phone))
end

-- Returns status, body for api_path ("/v3/...").
local function api(api_path)
  local method = ngx.req.get_method()
  if api_path == "/v3/phone_numbers" or api_path == "/v3/phonenumbers" then
    if method == "GET" or method == "HEAD" then return 200, list_body end
    return 404, envelope(404)
  end
  if method == "PUT" then
    local id = match(api_path, "^/v3/phone_numbers/([^/]+)$")
    if id then return put_forwarding(ngx.unescape_uri(id)) end
  end
  return 404, envelope(404)
end

-- Modes ----------------------------------------------------------------------------
-- Each gets (segs, n, api_path, path, query).

-- The common start of a mode: parses the name=value segments from `first` on;
-- answers 404 when `valid` is false or they do not parse, counts the id, answers
-- 401 without the key, sets the extra headers.  True when the mode goes on.
local function admit(valid, segs, first, n)
  local ok, id, hdrs = params(segs, first, n)
  if not valid or not ok then
    fail(404)
    return false
  end
  count(id)
  if not authorized() then
    fail(401)
    return false
  end
  set_headers(hdrs)
  return true
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
  local ok, id, hdrs = params(segs, 4, n)
  if not times or not status or not ok or not id then return fail(404) end
  local c = count(id)
  if not authorized() then return fail(401) end
  if c <= times then
    set_headers(hdrs)
    return fail(status)
  end
  return send(api(api_path))
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
  if not admit(ms, segs, 3, n) then return end
  if ms > 0 then ngx.sleep(ms / 1000) end
  return send(api(api_path))
end

-- drip/<MS>[/id=<ID>]
MODES.drip = function(segs, n, api_path)
  local ms = uint(segs[2])
  if not admit(ms, segs, 3, n) then return end
  local status, body = api(api_path)
  ngx.status = status
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
local function send_and_close(status, body, clen)
  ngx.status = status
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
  if not admit(bytes, segs, 3, n) then return end
  local status, body = api(api_path)
  if bytes > #body - 1 then bytes = #body - 1 end
  return send_and_close(status, sub(body, 1, bytes), #body)
end

-- short[/id=<ID>]: Content-Length = body + 100, the whole body, then a closed
-- connection (curl exit 18).
MODES.short = function(segs, n, api_path)
  if not admit(true, segs, 2, n) then return end
  local status, body = api(api_path)
  return send_and_close(status, body, #body + 100)
end

local MAX_HEADER = 2097152 -- bigheader's limit (2 MiB)

-- bigheader/<BYTES>[/id=<ID>]: the normal answer plus "x-padding: <BYTES x>".
MODES.bigheader = function(segs, n, api_path)
  local bytes = uint(segs[2])
  if not admit(bytes and bytes >= 1 and bytes <= MAX_HEADER, segs, 3, n) then return end
  ngx.header["x-padding"] = rep("x", bytes)
  return send(api(api_path))
end

-- gzip[/id=<ID>]: the normal answer; nginx.conf's "location /gzip/" has the
-- gzip filter on (Content-Encoding: gzip when Accept-Encoding allows it).
MODES.gzip = function(segs, n, api_path)
  if not admit(true, segs, 2, n) then return end
  return send(api(api_path))
end

local CHUNKS = 4 -- pieces of the chunked mode

-- chunked[/id=<ID>]: the normal answer without Content-Length, in CHUNKS
-- flushed pieces (Transfer-Encoding: chunked).
MODES.chunked = function(segs, n, api_path)
  if not admit(true, segs, 2, n) then return end
  local status, body = api(api_path)
  ngx.status = status
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
  local ok, id = params(segs, 2, n)
  if not ok then return fail(404) end
  count(id)
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
-- an excerpt folds), repeat (the quote PAD times over instead of padding).
local REFLECT_STYLES = { dots = true, spaces = true, ["repeat"] = true }
MODES.reflect = function(segs, n)
  local status = http_status(segs[2])
  local pad = segs[3] and uint(segs[3])
  local style = pad and segs[4] and REFLECT_STYLES[segs[4]] and segs[4]
  local ok, id = params(segs, 3 + (pad and 1 or 0) + (style and 1 or 0), n)
  if not status or not ok or (pad and pad > 65536) then return fail(404) end
  count(id)
  local quote = "you sent: " .. (ngx.var.http_authorization or "nothing")
  local body
  if style == "repeat" then
    body = rep(quote .. " ", pad) .. quote
  elseif style == "spaces" then
    body = rep("\n    ", math.floor(pad / 5)) .. quote
  else
    body = rep(".", pad or 0) .. quote
  end
  ngx.header["x-reflected"] = quote
  return send(status, body, "text/plain")
end

-- bare/<CODE>[/id=<ID>]: a status line and not one header field, then the
-- connection closes (a reply some proxies give).
MODES.bare = function(segs, n)
  local status = http_status(segs[2])
  local ok, id = params(segs, 3, n)
  if not status or not ok then return fail(404) end
  count(id)
  local sock = ngx.req.socket(true)
  if not sock then return fail(500) end
  sock:send(format("HTTP/1.1 %d Bare\r\n\r\n", status))
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

local NO_API_PATH_OK = { echo = true, hits = true }

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
  body = match(body, "^(.-)%s*$")
  local obj, derr = cjson.decode(body)
  if type(obj) ~= "table" or type(obj.phone_numbers) ~= "table" then
    error("sim: data file " .. data .. " is not a JSON object with a "
      .. "phone_numbers array: " .. tostring(derr or "wrong shape"))
  end
  for _, pn in ipairs(obj.phone_numbers) do
    if type(pn) == "table" and type(pn.id) == "string" then
      numbers[pn.id] = pn.phone_number
    end
  end
  list_body = body

  hits = ngx.shared.sim_hits
  if not hits then error("sim: lua_shared_dict sim_hits is missing") end

  BODIES.nested = { rep("[", 10000) .. rep("]", 10000), "application/json" }
  BODIES["invalid-utf8"] = {
    '{"message":"invalid utf-8 follows: \255\254 end"}', "application/json" }
  BODIES["huge-string"] = {
    '{"message":"' .. rep("x", 1048576) .. '"}', "application/json" }
  for status = 200, 599 do envelope(status) end
end

return _M
