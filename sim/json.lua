-- json.lua: the simulator's JSON codec for API objects.
--
-- Why not cjson: Debian's lua-cjson (2.1.0) decodes [] and {} to the same empty
-- table and encodes both as {}, so a stored `"voters":[]` would come back as
-- `"voters":{}`, and it escapes "/" as "\/" in every URL. Here arrays carry a
-- metatable (json.array) through decode -> store -> encode, objects are
-- encoded with sorted keys (stable bodies, easy to compare in tests), and
-- JSON null is cjson.null (the same light userdata as ngx.null).

-- luacheck: std ngx_lua

local cjson = require("cjson.safe")

local byte, char, find, format, gsub, sub, concat, sort =
  string.byte, string.char, string.find, string.format, string.gsub,
  string.sub, table.concat, table.sort
local floor, huge = math.floor, math.huge
local type, pairs, next, tonumber, setmetatable, getmetatable, error, pcall =
  type, pairs, next, tonumber, setmetatable, getmetatable, error, pcall

local _M = {}

local null = cjson.null
_M.null = null

local ARRAY = { __name = "json.array" }

-- Marks t (or a new table) as a JSON array, also when empty.
function _M.array(t)
  return setmetatable(t or {}, ARRAY)
end

function _M.is_array(t)
  return type(t) == "table" and getmetatable(t) == ARRAY
end

-- Encoding --------------------------------------------------------------------

local ESC = {
  ['"'] = '\\"', ["\\"] = "\\\\", ["\b"] = "\\b", ["\f"] = "\\f",
  ["\n"] = "\\n", ["\r"] = "\\r", ["\t"] = "\\t",
}

local function esc(c)
  return ESC[c] or format("\\u%04x", byte(c))
end

local function quote(s)
  return '"' .. gsub(s, '[%c"\\]', esc) .. '"'
end
_M.quote = quote

local encode_value

-- A table without the array mark is still an array when its keys are exactly
-- 1..n (n >= 1): handy for literals like { a, b }.
local function is_sequence(t)
  local n = #t
  if n == 0 then return false end
  local count = 0
  for _ in pairs(t) do count = count + 1 end
  return count == n
end

local function encode_table(t, buf, depth)
  if depth > 100 then error("json: nesting too deep") end
  if getmetatable(t) == ARRAY or is_sequence(t) then
    buf[#buf + 1] = "["
    for i = 1, #t do
      if i > 1 then buf[#buf + 1] = "," end
      encode_value(t[i], buf, depth + 1)
    end
    buf[#buf + 1] = "]"
    return
  end
  if next(t) == nil then
    buf[#buf + 1] = "{}"
    return
  end
  local keys = {}
  for k in pairs(t) do
    if type(k) == "string" then keys[#keys + 1] = k end
  end
  sort(keys)
  buf[#buf + 1] = "{"
  for i, k in ipairs(keys) do
    if i > 1 then buf[#buf + 1] = "," end
    buf[#buf + 1] = quote(k)
    buf[#buf + 1] = ":"
    encode_value(t[k], buf, depth + 1)
  end
  buf[#buf + 1] = "}"
end

encode_value = function(v, buf, depth)
  local t = type(v)
  if t == "string" then
    buf[#buf + 1] = quote(v)
  elseif t == "number" then
    if v ~= v or v == huge or v == -huge then
      buf[#buf + 1] = "null"
    elseif v == floor(v) and v > -2 ^ 53 and v < 2 ^ 53 then
      buf[#buf + 1] = format("%.0f", v)
    else
      buf[#buf + 1] = format("%.17g", v)
    end
  elseif t == "boolean" then
    buf[#buf + 1] = v and "true" or "false"
  elseif t == "table" then
    encode_table(v, buf, depth)
  else -- nil, null (light userdata) and anything else
    buf[#buf + 1] = "null"
  end
end

function _M.encode(v)
  local buf = {}
  encode_value(v, buf, 0)
  return concat(buf)
end

-- Decoding --------------------------------------------------------------------
-- A strict recursive-descent parser (RFC 8259): raw control characters in
-- strings, trailing commas, single quotes, NaN and leading "+" are errors.

local MAX_DEPTH = 200

local function fail(msg, pos)
  error({ json_error = format("%s at byte %d", msg, pos) }, 0)
end

local function skip_ws(s, pos)
  local _, e = find(s, "^[ \t\r\n]*", pos)
  return e + 1
end

local function utf8_char(cp)
  if cp < 0x80 then return char(cp) end
  if cp < 0x800 then
    return char(0xC0 + floor(cp / 0x40), 0x80 + cp % 0x40)
  end
  if cp < 0x10000 then
    return char(0xE0 + floor(cp / 0x1000), 0x80 + floor(cp / 0x40) % 0x40,
      0x80 + cp % 0x40)
  end
  return char(0xF0 + floor(cp / 0x40000), 0x80 + floor(cp / 0x1000) % 0x40,
    0x80 + floor(cp / 0x40) % 0x40, 0x80 + cp % 0x40)
end

local UNESC = {
  ['"'] = '"', ["\\"] = "\\", ["/"] = "/", b = "\b", f = "\f", n = "\n",
  r = "\r", t = "\t",
}

local function parse_string(s, pos) -- pos at the opening quote
  local parts, n = {}, 0
  local i = pos + 1
  while true do
    local j = find(s, '["\\%c]', i)
    if not j then fail("unterminated string", pos) end
    if j > i then
      n = n + 1
      parts[n] = sub(s, i, j - 1)
    end
    local c = sub(s, j, j)
    if c == '"' then
      return concat(parts), j + 1
    elseif c == "\\" then
      local e = sub(s, j + 1, j + 1)
      if e == "u" then
        local hex = sub(s, j + 2, j + 5)
        if not find(hex, "^%x%x%x%x$") then fail("bad \\u escape", j) end
        local cp = tonumber(hex, 16)
        i = j + 6
        if cp >= 0xD800 and cp <= 0xDBFF then
          local lo = find(s, "^\\u[dD][c-fC-F]%x%x", i) and tonumber(sub(s, i + 2, i + 5), 16)
          if lo then
            cp = 0x10000 + (cp - 0xD800) * 0x400 + (lo - 0xDC00)
            i = i + 6
          end
        end
        n = n + 1
        parts[n] = utf8_char(cp)
      else
        local u = UNESC[e]
        if not u then fail("bad escape", j) end
        n = n + 1
        parts[n] = u
        i = j + 2
      end
    elseif byte(c) == 127 then -- DEL is allowed raw
      n = n + 1
      parts[n] = c
      i = j + 1
    else
      fail("control character in string", j)
    end
  end
end

local parse_value

local function parse_array(s, pos, depth)
  local arr, n = setmetatable({}, ARRAY), 0
  pos = skip_ws(s, pos + 1)
  if sub(s, pos, pos) == "]" then return arr, pos + 1 end
  while true do
    local v
    v, pos = parse_value(s, pos, depth + 1)
    n = n + 1
    arr[n] = v
    pos = skip_ws(s, pos)
    local c = sub(s, pos, pos)
    if c == "]" then return arr, pos + 1 end
    if c ~= "," then fail("expected ',' or ']'", pos) end
    pos = skip_ws(s, pos + 1)
  end
end

local function parse_object(s, pos, depth)
  local obj = {}
  pos = skip_ws(s, pos + 1)
  if sub(s, pos, pos) == "}" then return obj, pos + 1 end
  while true do
    if sub(s, pos, pos) ~= '"' then fail("expected a key", pos) end
    local k
    k, pos = parse_string(s, pos)
    pos = skip_ws(s, pos)
    if sub(s, pos, pos) ~= ":" then fail("expected ':'", pos) end
    local v
    v, pos = parse_value(s, skip_ws(s, pos + 1), depth + 1)
    obj[k] = v
    pos = skip_ws(s, pos)
    local c = sub(s, pos, pos)
    if c == "}" then return obj, pos + 1 end
    if c ~= "," then fail("expected ',' or '}'", pos) end
    pos = skip_ws(s, pos + 1)
  end
end

parse_value = function(s, pos, depth)
  if depth > MAX_DEPTH then fail("nesting too deep", pos) end
  local c = sub(s, pos, pos)
  if c == "{" then return parse_object(s, pos, depth) end
  if c == "[" then return parse_array(s, pos, depth) end
  if c == '"' then return parse_string(s, pos) end
  if c == "t" and sub(s, pos, pos + 3) == "true" then return true, pos + 4 end
  if c == "f" and sub(s, pos, pos + 4) == "false" then return false, pos + 5 end
  if c == "n" and sub(s, pos, pos + 3) == "null" then return null, pos + 4 end
  local _, e = find(s, "^-?%d+", pos)
  if not e then fail("unexpected character", pos) end
  if find(s, "^-?0%d", pos) then fail("leading zero", pos) end
  local _, f = find(s, "^%.%d+", e + 1)
  if f then e = f end
  local _, x = find(s, "^[eE][-+]?%d+", e + 1)
  if x then e = x end
  return tonumber(sub(s, pos, e)), e + 1
end

-- Returns the value, or nil and a message.
function _M.decode(s)
  if type(s) ~= "string" then return nil, "not a string" end
  local ok, v, pos = pcall(function()
    local val, p = parse_value(s, skip_ws(s, 1), 0)
    return val, skip_ws(s, p)
  end)
  if not ok then
    if type(v) == "table" and v.json_error then return nil, v.json_error end
    return nil, tostring(v)
  end
  if pos <= #s then return nil, format("trailing data at byte %d", pos) end
  return v
end

return _M
