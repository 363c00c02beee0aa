-- store.lua: the simulator's state, kept in lua_shared_dict sim_state so that
-- every nginx worker sees the same data (the benchmark runs 2 workers).
--
-- Layout (all keys start with the namespace and "|", so namespaces never see
-- each other's data):
--   <ns>|o:<kind>:<id>        an object, as JSON (json.lua, arrays kept)
--   <ns>|n:<list>             a list's length (atomic incr)
--   <ns>|l:<list>:<i>         the list's i-th entry (an id), i = 1..n
--   <ns>|k:<name>             a small string value (indexes, flags)
--   <ns>|i:<scope>:<key>      an idempotency record ("pending" or the response)
-- Lists only grow: a deleted object's id stays in its list and readers skip it.
--
-- Read-modify-write of one object goes through update(), which holds a short
-- lock (an add() of a lock key) so two workers cannot lose each other's change.

-- luacheck: std ngx_lua

local json = require("json")

local ngx = ngx
local format, sub, find, tonumber = string.format, string.sub, string.find, tonumber
local error, pcall, setmetatable, tostring = error, pcall, setmetatable, tostring

local _M = {}

local dict -- ngx.shared.sim_state, set by init()

function _M.init()
  dict = ngx.shared.sim_state
  if not dict then error("sim: lua_shared_dict sim_state is missing") end
end

-- Writes fail loudly instead of letting the dict evict other objects.
local function put_raw(key, value, ttl)
  local ok, err = dict:safe_set(key, value, ttl or 0)
  if not ok then error("sim: state store full (" .. tostring(err) .. "); restart the simulator") end
end

-- Global (not namespaced) keys: uploads find their attachment by id alone.
function _M.global_get(key) return dict:get("g|" .. key) end
function _M.global_set(key, value) put_raw("g|" .. key, value) end
function _M.global_delete(key) dict:delete("g|" .. key) end

local Store = {}
Store.__index = Store

-- The store of namespace ns (validated by the caller: no "|").
function _M.ns(ns)
  return setmetatable({ p = ns .. "|" }, Store)
end

function Store:get(kind, id)
  local s = dict:get(self.p .. "o:" .. kind .. ":" .. id)
  if not s then return nil end
  local obj = json.decode(s)
  return obj
end

function Store:put(kind, id, obj)
  put_raw(self.p .. "o:" .. kind .. ":" .. id, json.encode(obj))
end

function Store:delete(kind, id)
  dict:delete(self.p .. "o:" .. kind .. ":" .. id)
end

-- Runs fn(obj) under the object's lock and stores what fn left in obj;
-- returns obj, or nil when there is no such object. fn may call common.fail:
-- then nothing is stored and the lock is released.
function Store:update(kind, id, fn)
  local key = self.p .. "o:" .. kind .. ":" .. id
  local lock = key .. "#lock"
  local got = false
  for _ = 1, 400 do -- at most ~2 s
    if dict:add(lock, true, 5) then got = true break end
    ngx.sleep(0.005)
  end
  if not got then error("sim: lock timeout on " .. key) end
  local s = dict:get(key)
  if not s then
    dict:delete(lock)
    return nil
  end
  local obj = json.decode(s)
  local ok, err = pcall(fn, obj)
  if ok then
    local wok, werr = pcall(put_raw, key, json.encode(obj))
    dict:delete(lock)
    if not wok then error(werr, 0) end
    return obj
  end
  dict:delete(lock)
  error(err, 0)
end

-- Appends id to list; returns its index (1-based).
function Store:append(list, id)
  local n, err = dict:incr(self.p .. "n:" .. list, 1, 0)
  if not n then error("sim: " .. tostring(err)) end
  put_raw(format("%sl:%s:%d", self.p, list, n), id)
  return n
end

function Store:len(list)
  return dict:get(self.p .. "n:" .. list) or 0
end

function Store:at(list, i)
  return dict:get(format("%sl:%s:%d", self.p, list, i))
end

function Store:kget(name) return dict:get(self.p .. "k:" .. name) end
function Store:kset(name, value) put_raw(self.p .. "k:" .. name, value) end
function Store:kdelete(name) dict:delete(self.p .. "k:" .. name) end
-- Sets name only when absent; true when this call set it.
function Store:kadd(name, value)
  local ok, err = dict:safe_add(self.p .. "k:" .. name, value)
  if not ok and err ~= "exists" then error("sim: " .. tostring(err)) end
  return ok
end

-- Idempotency ------------------------------------------------------------------
-- A record is "pending" while its first request runs, then "<status>\n<body>".

local PENDING = "pending"

-- The stored response for the key: status, body; or nil.
function Store:idem_get(scope, key)
  local v = dict:get(self.p .. "i:" .. scope .. ":" .. key)
  if not v or v == PENDING then return nil, v end
  local nl = find(v, "\n", 1, true)
  return tonumber(sub(v, 1, nl - 1)), sub(v, nl + 1)
end

-- Reserves the key: true when this request is the first (it must then call
-- idem_store or idem_release); otherwise waits (max ~10 s) for the first one's
-- response and returns false, status, body (status nil: still pending).
function Store:idem_reserve(scope, key)
  local k = self.p .. "i:" .. scope .. ":" .. key
  local ok, err = dict:safe_add(k, PENDING)
  if ok then return true end
  if err ~= "exists" then error("sim: " .. tostring(err)) end
  for _ = 1, 1000 do
    local status, body = self:idem_get(scope, key)
    if status then return false, status, body end
    if dict:get(k) == nil then -- the first one failed and released it: retry
      if dict:safe_add(k, PENDING) then return true end
    end
    ngx.sleep(0.01)
  end
  return false
end

function Store:idem_store(scope, key, status, body)
  put_raw(self.p .. "i:" .. scope .. ":" .. key, status .. "\n" .. body)
end

function Store:idem_release(scope, key)
  dict:delete(self.p .. "i:" .. scope .. ":" .. key)
end

-- Paging ------------------------------------------------------------------------

-- Newest-first cursor paging over list. The cursor is the decimal index of the
-- next entry to return (opaque to clients); keep(obj) filters. Returns the
-- objects and the next cursor (nil at the end).
-- load(id) -> obj or nil (deleted).
function Store:page_desc(list, cursor, limit, load, keep)
  local n = self:len(list)
  local i = n
  if cursor then i = cursor end
  local out = {}
  while i >= 1 do
    local id = self:at(list, i)
    local obj = id and load(id)
    if obj and (not keep or keep(obj)) then
      if #out == limit then return out, i end
      out[#out + 1] = obj
    end
    i = i - 1
  end
  return out, nil
end

-- The same, oldest first.
function Store:page_asc(list, cursor, limit, load, keep)
  local n = self:len(list)
  local i = cursor or 1
  local out = {}
  while i <= n do
    local id = self:at(list, i)
    local obj = id and load(id)
    if obj and (not keep or keep(obj)) then
      if #out == limit then return out, i end
      out[#out + 1] = obj
    end
    i = i + 1
  end
  return out, nil
end

return _M
