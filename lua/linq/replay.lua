--- linq.replay: remembering the webhook-ids already delivered, for `verify`'s `seen` option.
-- A guard is anything with `guard:add(id, expires_at, now)` that returns true when the id
-- is new (and remembers it until `expires_at`) and false when it is still remembered.
-- `verify` calls it only for a message that passed every other check, with
-- expires_at = the message's timestamp + the tolerance: until then the same message
-- would pass the timestamp check, so until then a second delivery is refused.
--
-- `linq.replay_guard{ size = N }` is one process's store: a table of ids plus a
-- min-heap of their expiry times; a full store first drops what has expired, then the
-- entry that would expire soonest.  Inside nginx, `seen = "<lua_shared_dict name>"`
-- uses the shared dict's atomic add instead (every worker sees it).
local M = {}

local floor, type, tostring, os_time = math.floor, type, tostring, os.time

local DEFAULT_SIZE = 10000

local Guard = {}
Guard.__index = Guard

--- A bounded in-process store of webhook-ids: opts.size (default 10000) entries at most.
function M.new(opts)
  if opts == nil then opts = {} end
  if type(opts) ~= "table" then
    error("bad argument #1 to 'replay_guard' (options must be a table, got a " .. type(opts) .. ")", 2)
  end
  for k in pairs(opts) do
    if k ~= "size" then
      error("bad argument #1 to 'replay_guard' (unknown option '" .. tostring(k) .. "')", 2)
    end
  end
  local size = opts.size
  if size == nil then size = DEFAULT_SIZE end
  if type(size) ~= "number" or size < 1 or size ~= floor(size) or size > 2 ^ 31 then
    error("bad argument #1 to 'replay_guard' (option 'size' must be a whole number from 1)", 2)
  end
  return setmetatable({ _size = size, _expiry = {}, _heap = {}, _count = 0 }, Guard)
end

-- The heap holds ids ordered by their expiry time (self._expiry[id]).
local function swap(heap, i, j)
  heap[i], heap[j] = heap[j], heap[i]
end

local function push(self, id)
  local heap, expiry = self._heap, self._expiry
  local i = self._count + 1
  self._count = i
  heap[i] = id
  while i > 1 do
    local parent = floor(i / 2)
    if expiry[heap[parent]] <= expiry[heap[i]] then break end
    swap(heap, i, parent)
    i = parent
  end
end

local function pop(self)
  local heap, expiry = self._heap, self._expiry
  local n = self._count
  local top = heap[1]
  heap[1] = heap[n]
  heap[n] = nil
  n = n - 1
  self._count = n
  local i = 1
  while true do
    local l, r, least = 2 * i, 2 * i + 1, i
    if l <= n and expiry[heap[l]] < expiry[heap[least]] then least = l end
    if r <= n and expiry[heap[r]] < expiry[heap[least]] then least = r end
    if least == i then break end
    swap(heap, i, least)
    i = least
  end
  expiry[top] = nil
end

--- true when id is new (now remembered until expires_at), false when it is remembered.
-- An entry is live while now <= expires_at.
function Guard:add(id, expires_at, now)
  if type(id) ~= "string" then
    error("bad argument #1 to 'add' (the webhook id must be a string)", 2)
  end
  if type(expires_at) ~= "number" or expires_at ~= expires_at then
    error("bad argument #2 to 'add' (expires_at must be a number)", 2)
  end
  if now == nil then now = os_time() end
  if type(now) ~= "number" or now ~= now then
    error("bad argument #3 to 'add' (now must be a number)", 2)
  end
  local expiry = self._expiry
  while self._count > 0 and expiry[self._heap[1]] < now do
    pop(self)
  end
  if expiry[id] ~= nil then return false end
  if expires_at < now then return true end  -- already expired: nothing to remember
  if self._count >= self._size then pop(self) end  -- the entry that expires soonest
  expiry[id] = expires_at
  push(self, id)
  return true
end

--- How many ids the guard holds (expired ones included until the next add drops them).
function Guard:count()
  return self._count
end

local function shared_add(self, id, expires_at, now)
  -- Whole seconds are floored by verify, while the dict's clock runs on: one more
  -- second keeps the entry for as long as the message can pass. Never 0 (= forever).
  local ttl = expires_at - now + 1
  if ttl < 1 then ttl = 1 end
  local ok, err = self._dict:add(id, true, ttl)
  if ok then return true end
  if err == "exists" then return false end
  error("linq: the lua_shared_dict '" .. self._name .. "' could not remember a webhook-id: " ..
    tostring(err), 0)
end

local shared_guards = {}

--- The guard for a lua_shared_dict, by name; nil and a message outside nginx or when
-- there is no such dict.  Looks at ngx only when called, never at require time.
function M.shared_dict(name)
  local shared = type(ngx) == "table" and ngx.shared or nil
  if type(shared) ~= "table" then
    return nil, "a lua_shared_dict name ('" .. name .. "') works only inside nginx (ngx.shared); " ..
      "elsewhere pass linq.replay_guard{}"
  end
  local dict = shared[name]
  if dict == nil then
    return nil, "no lua_shared_dict named '" .. name .. "' (declare it with lua_shared_dict)"
  end
  local guard = shared_guards[name]
  if guard == nil or guard._dict ~= dict then
    guard = { _dict = dict, _name = name, add = shared_add }
    shared_guards[name] = guard
  end
  return guard
end

return M
