-- common.lua: what every API handler of the simulator shares: error envelopes
-- with the reference's codes (api-v3.md section 7), ids, timestamps, request
-- bodies and field validation.
--
-- Handlers stop with C.fail(status, code[, message]): it throws a table that
-- the router turns into the error envelope, so validation helpers can stop a
-- request from any depth without every caller checking a return value.

-- luacheck: std ngx_lua

local json = require("json")

local ngx = ngx
local find, format, sub, lower, byte, match, gsub =
  string.find, string.format, string.sub, string.lower, string.byte,
  string.match, string.gsub
local floor, random = math.floor, math.random
local type, tostring, tonumber, error, setmetatable, getmetatable =
  type, tostring, tonumber, error, setmetatable, getmetatable

local _M = {}

local null = json.null
_M.null = null

-- Error envelopes -------------------------------------------------------------

-- Messages of the reference's error table (api-v3.md section 7).
local MESSAGES = {
  [1001] = "Missing required field",
  [1002] = "Phone number must be in E.164 format",
  [1003] = "Invalid request body",
  [1004] = "Invalid message content",
  [1005] = "Invalid parameter value",
  [1006] = "Cannot update direct message chats",
  [1008] = "Invalid iMessage app message",
  [2001] = "Chat not found",
  [2002] = "Message not found",
  [2003] = "Attachment not found",
  [2004] = "Unauthorized - missing or invalid authentication token",
  [2005] = "Access denied",
  [2006] = "Phone number permission denied",
  [2007] = "Attachment not ready",
  [2010] = "Webhook subscription not found",
  [2011] = "Feature not available",
  [2012] = "Contact card not found",
  [2013] = "This chat is unavailable",
  [2014] = "A contact card already exists for this phone number",
  [2015] = "Operation conflicts with current state",
  [2016] = "Operation not supported in group chats",
  [2017] = "Operation not supported on this chat's service type",
  [2019] = "Phone number not found",
  [2021] = "Payment request not found",
  [2026] = "Recipient is blocked",
  [2027] = "Sending number temporarily ineligible",
  [4004] = "Not found",
  [5004] = "Invalid file type",
  [5005] = "File too large",
  [5006] = "Content type mismatch",
}

local function trace_id()
  return ngx.var.request_id
end
_M.trace_id = trace_id

-- The error body: the envelope of today plus the top-level trace_id, equal to
-- the x-trace-id header that nginx.conf adds to every response.
function _M.envelope(status, code, message)
  return format('{"error":{"status":%d,"code":%d,"message":%s,'
    .. '"doc_url":"https://docs.linqapp.com/error/codes/%sxxx/%d/"},'
    .. '"success":false,"trace_id":"%s"}', status, code,
    json.quote(message or MESSAGES[code] or "Error"), sub(tostring(code), 1, 1),
    code, trace_id())
end

local FAIL = {}

-- Stops the current handler with an error envelope (see the router's pcall).
function _M.fail(status, code, message)
  error(setmetatable({ status = status, code = code, message = message }, FAIL), 0)
end

function _M.is_failure(e)
  return type(e) == "table" and getmetatable(e) == FAIL
end

function _M.not_found(code, message)
  return _M.fail(404, code or 4004, message)
end

-- Ids and time ----------------------------------------------------------------

-- math.random is seeded once per worker (the master's state is copied into
-- every forked worker, so a seed in init() would give all workers the same ids).
local seeded_pid
local function seed()
  local pid = ngx.worker.pid()
  if seeded_pid == pid then return end
  seeded_pid = pid
  local s = floor(ngx.now() * 1000) + pid * 65537
  local f = io.open("/dev/urandom", "rb")
  if f then
    local b = f:read(4)
    f:close()
    if b and #b == 4 then
      s = s + ((byte(b, 1) * 256 + byte(b, 2)) * 256 + byte(b, 3)) * 256 + byte(b, 4)
    end
  end
  math.randomseed(s % 2147483647)
end

-- n random bytes (a simulator's secrets need not be cryptographic).
function _M.random_bytes(n)
  seed()
  local t = {}
  for i = 1, n do t[i] = string.char(random(0, 255)) end
  return table.concat(t)
end

function _M.random_hex(n) -- n hex digits
  seed()
  local t = {}
  for i = 1, n do t[i] = format("%x", random(0, 15)) end
  return table.concat(t)
end

-- A UUID v4 string.
function _M.uuid()
  local h = _M.random_hex(32)
  local variant = format("%x", 8 + random(0, 3))
  return sub(h, 1, 8) .. "-" .. sub(h, 9, 12) .. "-4" .. sub(h, 14, 16) .. "-"
    .. variant .. sub(h, 18, 20) .. "-" .. sub(h, 21, 32)
end

-- ISO-8601 UTC with milliseconds, e.g. 2026-01-02T03:04:05.678Z;
-- offset in seconds from now.
function _M.iso(offset)
  local t = ngx.now() + (offset or 0)
  local s = floor(t)
  return os.date("!%Y-%m-%dT%H:%M:%S", s) .. format(".%03dZ", floor((t - s) * 1000))
end

-- Responses -------------------------------------------------------------------

-- The origin of the request as the client reached it (scheme, Host header),
-- for URLs that point back at the simulator (upload, download, vCard).
function _M.origin()
  local host = ngx.var.http_host
  if not host or host == "" then
    host = ngx.var.server_addr .. ":" .. ngx.var.server_port
  end
  return ngx.var.scheme .. "://" .. host
end

-- Request bodies --------------------------------------------------------------

local function read_file(path, max)
  local f = io.open(path, "rb")
  if not f then return nil end
  local s = f:read(max or "*a")
  f:close()
  return s
end
_M.read_file = read_file

-- The raw request body or nil (also when nginx put it in a temp file).
function _M.raw_body()
  ngx.req.read_body()
  local data = ngx.req.get_body_data()
  if data then return data end
  local file = ngx.req.get_body_file()
  if file then return read_file(file) end
  return nil
end

function _M.is_json_ctype(ct)
  if type(ct) ~= "string" then return false end
  ct = lower(ct)
  return find(ct, "^%s*application/json%s*$") ~= nil
    or find(ct, "^%s*application/json%s*;") ~= nil
end

-- A body that is present must be declared as JSON: 400/1003 otherwise.
function _M.check_body_ctype(body)
  if body and body ~= "" and not _M.is_json_ctype(ngx.var.content_type) then
    _M.fail(400, 1003, "Invalid request body: Content-Type must be application/json")
  end
end

-- The request's JSON object body (400/1003 when missing, not JSON, not an object
-- or not declared as application/json).
function _M.json_body()
  local body = _M.raw_body()
  if not body or body == "" then
    _M.fail(400, 1003, "Invalid request body: a JSON object is required")
  end
  _M.check_body_ctype(body)
  local obj, err = json.decode(body)
  if type(obj) ~= "table" or json.is_array(obj) then
    _M.fail(400, 1003, "Invalid request body: " .. (err or "not a JSON object"))
  end
  return obj
end

-- Field validation ---------------------------------------------------------------

local function present(v)
  return v ~= nil and v ~= null
end
_M.present = present

-- obj[name] must be present (400/1001 naming the field).
function _M.need(obj, name, label)
  local v = obj[name]
  if not present(v) then
    _M.fail(400, 1001, "Missing required field: " .. (label or name))
  end
  return v
end

function _M.bad(label, why)
  _M.fail(400, 1005, "Invalid parameter value: " .. label .. (why and (" " .. why) or ""))
end

function _M.need_string(obj, name, label)
  local v = _M.need(obj, name, label)
  if type(v) ~= "string" or v == "" then _M.bad(label or name, "(a non-empty string)") end
  return v
end

function _M.opt_string(obj, name, label)
  local v = obj[name]
  if not present(v) then return nil end
  if type(v) ~= "string" then _M.bad(label or name, "(a string)") end
  return v
end

function _M.opt_bool(obj, name)
  local v = obj[name]
  if not present(v) then return nil end
  if type(v) ~= "boolean" then _M.bad(name, "(true or false)") end
  return v
end

function _M.is_int(v)
  return type(v) == "number" and v == floor(v) and v > -2 ^ 53 and v < 2 ^ 53
end

function _M.need_array(obj, name, label)
  local v = _M.need(obj, name, label)
  if not json.is_array(v) then _M.bad(label or name, "(an array)") end
  return v
end

local E164 = "^%+[1-9]%d%d%d%d%d%d+$" -- then at most 15 digits in all

function _M.is_e164(s)
  return type(s) == "string" and find(s, E164) ~= nil and #s <= 16
end

function _M.is_email(s)
  return type(s) == "string" and find(s, "^[^@%s]+@[^@%s]+%.[^@%s]+$") ~= nil
end

-- A phone number in E.164 (400/1002 otherwise).
function _M.e164(s, label)
  if type(s) ~= "string" then
    _M.fail(400, 1002, "Phone number must be in E.164 format: " .. (label or "phone_number"))
  end
  if not _M.is_e164(s) then
    _M.fail(400, 1002, "Phone number must be in E.164 format: " .. (label or "") .. " "
      .. json.quote(s))
  end
  return s
end

-- A handle: E.164 phone number or email (400/1002 otherwise). Emails are
-- compared in lower case.
function _M.handle(s, label)
  if _M.is_email(s) then return lower(s) end
  return _M.e164(s, label)
end

function _M.is_https(s)
  return type(s) == "string" and find(lower(s), "^https://[^/%s]+") ~= nil
end

-- Query strings ---------------------------------------------------------------

-- ngx.req.get_uri_args with repeated args flattened to their last value.
function _M.query()
  local args = ngx.req.get_uri_args(100)
  for k, v in pairs(args) do
    if type(v) == "table" then args[k] = v[#v] end
  end
  return args
end

-- A query list: comma-joined (what the SDKs send) and/or repeated.
function _M.query_list(name)
  local args = ngx.req.get_uri_args(100)
  local v = args[name]
  if v == nil or v == true then return nil end
  if type(v) ~= "table" then v = { v } end
  local out = json.array()
  for _, item in ipairs(v) do
    if type(item) == "string" then
      for piece in string.gmatch(item, "[^,]+") do
        piece = match(piece, "^%s*(.-)%s*$")
        if piece ~= "" then out[#out + 1] = piece end
      end
    end
  end
  return out
end

-- limit: absent -> default; digits 1..max, else 400/1005.
function _M.limit(args, default, max)
  local v = args.limit
  if v == nil or v == "" then return default end
  local n = type(v) == "string" and find(v, "^%d+$") and #v < 10 and tonumber(v)
  if not n or n < 1 or n > max then
    _M.bad("limit", format("(an integer from 1 to %d)", max))
  end
  return n
end

-- Percent-decoding of a path segment. Not ngx.unescape_uri: it turns "+"
-- into a space, and a raw "+" is common in paths ("/v3/phone_numbers/+1555...").
local function unhex(h) return string.char(tonumber(h, 16)) end
function _M.unescape(s)
  return (gsub(s, "%%(%x%x)", unhex))
end

-- Simple string helpers -----------------------------------------------------------

function _M.basename(url)
  local path = match(url, "^[^?#]*") or url
  local name = match(path, "([^/]+)$")
  return name and gsub(name, "%%(%x%x)", function(h) return string.char(tonumber(h, 16)) end)
    or "file"
end

return _M
