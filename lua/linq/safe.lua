--- require("linq.safe"): the linq module with clients whose calls return nil, err
-- instead of raising, as cjson.safe is to cjson.
--
-- A raised table is what nginx and the Lua 5.1 interpreter cannot show ("runtime
-- error: unknown reason", "(error object is not a string)"), so a caller there
-- either pcalls every call or uses this.  A failed call (a linq error object:
-- linq.is_error(err)) comes back as nil, err; misuse (a string error: a bad
-- argument, a closed client) still raises, since it is a bug in the caller, not an
-- outcome to handle.
--
-- A safe client is an empty table standing in front of a normal client made by
-- whatever require("linq").new is at the time (the nginx front inside nginx).
-- Its methods are made once per name for the whole module, not per client or per
-- call, and look the client's own method up at each call.
local linq = require("linq")

local M = {}
for k, v in pairs(linq) do M[k] = v end

local type, pcall, error, setmetatable, tostring, format =
  type, pcall, error, setmetatable, tostring, string.format
local is_error = linq.is_error
-- The client's own __close sits behind a __metatable guard; the debug library
-- is the only way to it (see Client.__close below).
local raw_getmetatable = debug and debug.getmetatable

-- The normal client behind each safe one: out of reach of pairs(), and weak, so a
-- dropped safe client takes its client with it (whose own __gc then frees it).
local inner = setmetatable({}, { __mode = "k" })

-- Misuse is raised again at the caller of the safe method.  An error the client
-- raised from a helper here carries this file's position (Lua adds the caller's
-- position, and the caller was this file): that is dropped for the caller's own.
local function strip(err)
  if type(err) ~= "string" then return err end
  return (err:gsub("^[^\n]-linq/safe%.lua:%d+: ", "", 1))
end

local function unwrap(self, name)
  local c = inner[self]
  if c == nil then
    error(format("bad argument #1 to '%s' (linq.Client expected, got %s)", name,
                 self == nil and "no value" or type(self)), 3)
  end
  return c
end

-- Lua names `request` and `close` (C functions without a name of their own) from
-- the call site and counts their arguments after self only in a method call: they
-- are called with `:` here so their messages read as on a normal client.
local direct = {
  request = function(c, ...)
    local res, meta = c:request(...)  -- not a tail call: the frame names the method
    return res, meta
  end,
}

-- An operation, request or upload_attachment: res, meta, or nil, err.
local function call(name)
  local via = direct[name]
  return function(self, ...)
    local c = unwrap(self, name)
    local ok, res, meta
    if via then
      ok, res, meta = pcall(via, c, ...)
    else
      ok, res, meta = pcall(c[name], c, ...)
    end
    if ok then return res, meta end
    if is_error(res) then return nil, res end
    error(strip(res), 2)
  end
end

-- pages and each.  A failed page is yielded once as false, err and the iterator
-- then ends: nil, err would end a `for` loop before its body saw the error, so a
-- failure would look like the last page.  Misuse (a name that is not a list
-- operation) raises when the iterator is made, before any traffic.
local function iterate(name)
  return function(self, ...)
    local c = unwrap(self, name)
    local ok, step = pcall(c[name], c, ...)
    if not ok then error(strip(step), 2) end
    local done = false
    return function()
      if done then return nil end
      local good, a, b, d = pcall(step)
      if good then
        done = a == nil
        return a, b, d
      end
      done = true
      if is_error(a) then return false, a end
      error(strip(a), 2)
    end
  end
end

-- all and each_result settle failures themselves and raise only for misuse.
local function pass(name)
  return function(self, ...)
    local c = unwrap(self, name)
    return c[name](c, ...)
  end
end

local function close_client(c)
  c:close()
end

local function close(self)
  local c = unwrap(self, "close")
  local ok, err = pcall(close_client, c)
  if not ok then error(strip(err), 2) end
end

local ITERATORS = { pages = true, each = true }
local PASSED = { all = true, each_result = true }

local function make(name)
  if name == "close" then return close end
  if ITERATORS[name] then return iterate(name) end
  if PASSED[name] then return pass(name) end
  return call(name)
end

-- The safe methods made so far, by name, for every safe client.
local methods = {}

local Client = { __name = "linq.Client", __metatable = "linq.Client" }

function Client.__index(self, name)
  local f = methods[name]
  if f == nil then
    local c = inner[self]
    if type(name) ~= "string" or c == nil or type(c[name]) ~= "function" then return nil end
    f = make(name)
    methods[name] = f
  end
  return f
end

function Client.__tostring(self)
  return (tostring(inner[self]):gsub("^linq%.Client", "linq.safe.Client", 1))
end

-- The end of a <close> scope runs the client's own __close, which (unlike close)
-- waits for a call of the same client still in progress instead of raising.
function Client.__close(self)
  local c = inner[self]
  local mt = raw_getmetatable and raw_getmetatable(c)
  local scope_close = type(mt) == "table" and mt.__close
  if scope_close then scope_close(c) else c:close() end
end

local function make_client(...)
  local c = linq.new(...)  -- looked up now: inside nginx it is the nginx front's
  return c                 -- not a tail call: Lua names 'new' in its messages
end

function M.new(...)
  local ok, c = pcall(make_client, ...)
  if not ok then error(strip(c), 2) end
  local self = setmetatable({}, Client)
  inner[self] = c
  return self
end

return M
