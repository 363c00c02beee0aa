--- The linq client inside nginx (OpenResty's ngx_lua).
--
-- A libcurl call in a request handler would stall every request on the worker,
-- and deadlock when it calls the same nginx.  So in handlers and timers each call
-- runs the C client on nginx's thread pool with ngx.run_worker_thread: the
-- handler's coroutine yields and the worker goes on serving.  Each pool thread has
-- its own Lua VM, where `run` below keeps one C client per configuration, so
-- connections stay alive across calls.
--
-- Only plain values cross between the VMs: a structured error comes back as a
-- plain table and gets the error metatable again here.
local core = require("linq.core")
local paging = require("linq.paging")

local M = {}

local DEFAULT_POOL = "linq"

-- Phases where the caller's coroutine can wait for a pool thread.
local YIELDING = { rewrite = true, access = true, content = true, timer = true }

-- The configuration of each client, out of reach of pairs() and of anything that
-- dumps the client, since it holds the key.
local state = setmetatable({}, { __mode = "k" })

local Client = {}
local methods = {}
Client.__index = methods
Client.__name = "linq.Client"
Client.__metatable = "linq.Client"

function Client.__tostring(self)
  local st = state[self]
  if st.closed then return "linq.Client (closed, nginx)" end
  return string.format("linq.Client (%s, nginx thread pool '%s')", st.base_url, st.pool)
end

-- Re-raises an error from the C core at the caller's level, without the position
-- inside this file that Lua prefixed to it.
local function reraise(err, level)
  if type(err) == "string" then
    err = err:gsub("^[^\n]-linq/nginx%.lua:%d+: ", "", 1)
    error(err, level + 1)
  end
  error(err, 0)
end

local function copy(t)
  local c = {}
  for k, v in pairs(t) do c[k] = v end
  return c
end

-- A stable text for a configuration: the cache key of the pool threads' clients.
local function config_key(config)
  local names = {}
  for k in pairs(config) do names[#names + 1] = k end
  table.sort(names)
  local parts = {}
  for _, k in ipairs(names) do
    local v = config[k]
    if type(v) == "table" then
      local hs = {}
      for hk, hv in pairs(v) do hs[#hs + 1] = hk:lower() .. "\0" .. tostring(hv) end
      table.sort(hs)
      v = table.concat(hs, "\1")
    end
    parts[#parts + 1] = k .. "=" .. tostring(v)
  end
  return table.concat(parts, "\2")
end

function M.new(opts)
  if opts ~= nil and type(opts) ~= "table" then
    error(string.format("bad argument #1 to 'new' (table expected, got %s)", type(opts)), 2)
  end
  local config = copy(opts or {})
  if config.headers ~= nil and type(config.headers) == "table" then
    config.headers = copy(config.headers)
  end
  local pool = config.thread_pool
  config.thread_pool = nil
  if pool == nil then
    pool = DEFAULT_POOL
  elseif type(pool) ~= "string" or pool == "" then
    error("bad argument #1 to 'new' (option 'thread_pool' must be a non-empty string)", 2)
  end
  -- Settle the key and base URL here, from this process's environment, and let the
  -- C core check every option now: misuse is an error at linq.new, not at a call.
  -- As in the C core, only an absent option falls back to its variable, and an
  -- empty variable counts as unset.
  for option, variable in pairs{ api_key = "LINQ_API_V3_API_KEY", base_url = "LINQ_API_V3_BASE_URL" } do
    local value = os.getenv(variable)
    if config[option] == nil and value ~= "" then config[option] = value end
  end
  local ok, probe = pcall(function()
    local c = core.new(config)  -- not a tail call: Lua names 'new' in its messages
    return c
  end)
  if not ok then reraise(probe, 2) end
  local base_url = tostring(probe):match("^linq%.Client %((.*)%): ") or "?"
  probe:close()

  local self = setmetatable({}, Client)
  state[self] = { config = config, key = config_key(config), pool = pool, base_url = base_url }
  return self
end

local function check(self, name)
  local st = state[self]
  if st == nil then
    local got = self == nil and "no value" or type(self)
    error(string.format("bad argument #1 to '%s' (linq.Client expected, got %s)", name, got), 3)
  end
  if st.closed then
    error(string.format("bad argument #1 to '%s' (the linq client is closed)", name), 3)
  end
  return st
end

-- Runs one call of the C client, in this VM (where nginx may block: init) or on
-- the thread pool.
local function dispatch(st, name, ...)
  local phase = ngx.get_phase()
  if phase == "init" then
    -- nginx is not serving yet; a client made here is closed at once, so no
    -- connection is inherited by the workers that fork from this process.
    local client = core.new(st.config)
    local ok, res, meta = pcall(M.call, client, name, ...)
    client:close()
    if not ok then reraise(res, 3) end
    return res, meta
  end
  if not YIELDING[phase] then
    error(string.format("linq: cannot call the Linq API in nginx's '%s' phase, where nginx " ..
                        "cannot wait for it without blocking the worker; call it from " ..
                        "rewrite_by_lua*, access_by_lua*, content_by_lua* or a timer " ..
                        "(ngx.timer.at)", phase), 3)
  end
  local ok, done, res, meta = ngx.run_worker_thread(st.pool, "linq.nginx", "run",
                                                    st.key, st.config, name, ...)
  if not ok then
    local why = tostring(done)
    if why:find("thread pool .* not found") then
      error(string.format("linq: nginx has no thread pool '%s': add `thread_pool %s " ..
                          "threads=16;` to the main context of nginx.conf, or pass " ..
                          "thread_pool = \"<name>\" to linq.new", st.pool, st.pool), 3)
    end
    error("linq: the nginx thread pool could not run the call: " .. why, 3)
  end
  if done then return res, meta end
  if type(res) == "table" then setmetatable(res, core._error_mt) end
  reraise(res, 3)
end

-- Runs one method of the C client.  The operations name themselves in their
-- errors; request is called by name so Lua knows it for its messages.
function M.call(client, name, ...)
  if name == "request" then
    local res, meta = client:request(...)
    return res, meta
  end
  local res, meta = client[name](client, ...)
  return res, meta
end

-- Every operation of the table, the upload and request: one generic forwarder
-- each, nothing per operation.
local forwarded = { "request", "upload_attachment" }
for name in pairs(core._operations()) do forwarded[#forwarded + 1] = name end
for _, name in ipairs(forwarded) do
  methods[name] = function(self, ...)
    return dispatch(check(self, name), name, ...)
  end
end
-- Each page is one forwarded call.
paging.install(methods, core._operations(), core._error_mt)

function methods.close(self)
  local st = state[self]
  if st == nil then
    error("bad argument #1 to 'close' (linq.Client expected, got " .. type(self) .. ")", 2)
  end
  st.closed = true
end
Client.__close = methods.close

-- In a pool thread's own VM: one C client per configuration, kept for the next
-- call.  Returns true, res, meta or false, err, since an error raised with a table
-- would reach the caller as an empty string.
local clients, cached = {}, 0
local MAX_CACHED = 16

function M.run(key, config, name, ...)
  require("linq")  -- the methods written in Lua (the upload) in this VM too
  local client = clients[key]
  if client == nil then
    if cached >= MAX_CACHED then
      for _, c in pairs(clients) do c:close() end
      clients, cached = {}, 0
    end
    client = core.new(config)
    clients[key], cached = client, cached + 1
  end
  local ok, res, meta = pcall(M.call, client, name, ...)
  if not ok then
    if type(res) == "table" then setmetatable(res, nil) end
    return false, res
  end
  -- meta.headers is built on first access, by a metatable that cannot cross.
  local _ = meta.headers
  return true, res, meta
end

return M
