--- The linq client inside nginx (OpenResty's ngx_lua).
--
-- A libcurl call in a request handler would stall every request on the worker,
-- so in the phases that can yield (handlers, timers, the ssl_* phases) each call
-- goes over nginx's own cosockets (lua/linq/cosocket.lua), driven by the C core's
-- exchange: the worker's event loop does the waiting and nginx keeps connections
-- alive in its pool.  The transport is chosen per call, not per client: a client
-- made once in init_by_lua or init_worker_by_lua (the usual one-per-worker
-- pattern) goes over cosockets when a handler or timer calls it.  In init_by_lua,
-- where nginx is not serving yet, a call runs over libcurl directly.
local core = require("linq.core")
local cosocket = require("linq.cosocket")
local paging = require("linq.paging")
local upload = require("linq.upload")
local batch = require("linq.batch")

local M = {}

local ngx = ngx
local get_phase = ngx.get_phase
local setmetatable, error, format, type, pairs, ipairs =
  setmetatable, error, string.format, type, pairs, ipairs

-- Phases where ngx_lua lets a cosocket wait.
local YIELDING = {
  rewrite = true, access = true, content = true, timer = true,
  ssl_cert = true, ssl_session_fetch = true, ssl_client_hello = true,
}

-- The configuration and the C client of each client, out of reach of pairs()
-- and of anything that dumps the client, since they hold the key.
local state = setmetatable({}, { __mode = "k" })

local Client = {}
local methods = {}
Client.__index = methods
Client.__name = "linq.Client"
Client.__metatable = "linq.Client"

function Client.__tostring(self)
  local st = state[self]
  if st.closed then return "linq.Client (closed, nginx)" end
  return format("linq.Client (%s, nginx cosockets)", st.base_url)
end

-- Re-raises an error from the C core at the caller's level, without the position
-- inside this file that Lua prefixed to it.
local function reraise(err, level)
  if type(err) == "string" then
    err = err:gsub("^[^\n]-linq/[%w_]+%.lua:%d+: ", "", 1)
    error(err, level + 1)
  end
  error(err, 0)
end

local function copy(t)
  local c = {}
  for k, v in pairs(t) do c[k] = v end
  return c
end

local NGX_LEVEL = { error = ngx.ERR, warn = ngx.WARN, info = ngx.INFO, debug = ngx.DEBUG }

local function log_to_nginx(level, line)
  ngx.log(NGX_LEVEL[level] or ngx.NOTICE, line)
end

function M.new(opts)
  if opts ~= nil and type(opts) ~= "table" then
    error(format("bad argument #1 to 'new' (table expected, got %s)", type(opts)), 2)
  end
  local config = copy(opts or {})
  -- Inside nginx a client's lines go to nginx's error log, at nginx's own levels.
  if config.logger == nil then config.logger = log_to_nginx end
  if type(config.headers) == "table" then config.headers = copy(config.headers) end
  if config.proxy ~= nil then
    error("bad argument #1 to 'new' (option 'proxy' cannot be used inside nginx: calls go " ..
          "over nginx's cosockets, which connect directly)", 2)
  end
  if config.ca_file ~= nil then
    error("bad argument #1 to 'new' (option 'ca_file' cannot be used inside nginx: TLS there " ..
          "is verified against nginx's lua_ssl_trusted_certificate; point that directive at " ..
          "your CA bundle instead)", 2)
  end
  -- The key and base URL are settled here, from this process's environment, and the
  -- C core checks every option now: misuse is an error at linq.new, not at a call.
  -- As in the C core, only an absent option falls back to its variable, and an
  -- empty variable counts as unset.
  for option, variable in pairs{ api_key = "LINQ_API_V3_API_KEY", base_url = "LINQ_API_V3_BASE_URL" } do
    local value = os.getenv(variable)
    if config[option] == nil and value ~= "" then config[option] = value end
  end
  local ok, client = pcall(function()
    local c = core.new(config)  -- not a tail call: Lua names 'new' in its messages
    return c
  end)
  if not ok then reraise(client, 2) end
  local self = setmetatable({}, Client)
  state[self] = {
    config = config, client = client,
    base_url = tostring(client):match("^linq%.Client %((.*)%): ") or "?",
  }
  return self
end

local function check(self, name)
  local st = state[self]
  if st == nil then
    local got = self == nil and "no value" or type(self)
    error(format("bad argument #1 to '%s' (linq.Client expected, got %s)", name, got), 3)
  end
  if st.closed then
    error(format("bad argument #1 to '%s' (the linq client is closed)", name), 3)
  end
  return st
end

-- In init_by_lua nginx is not serving yet and may block: the call runs over
-- libcurl, on a client closed at once so no connection is inherited by the workers
-- that fork from this process.
local function in_init(st, call, name, ...)
  local client = core.new(st.config)
  local ok, res, meta = pcall(call, client, name, ...)
  client:close()
  if not ok then reraise(res, 4) end
  return res, meta
end

local function blocked(phase)
  error(format("linq: cannot call the Linq API in nginx's '%s' phase, where nginx cannot " ..
               "wait for it without blocking the worker; call it from rewrite_by_lua*, " ..
               "access_by_lua*, content_by_lua* or a timer (ngx.timer.at)", phase), 4)
end

local function call_direct(client, name, ...)
  if name == "request" then
    local res, meta = client:request(...)  -- called by name: Lua words its errors
    return res, meta
  end
  local res, meta = client[name](client, ...)
  return res, meta
end

local function dispatch(st, name, ...)
  local phase = get_phase()
  if YIELDING[phase] then
    local ok, res, meta = pcall(cosocket.call, st.client, name, ...)
    if not ok then reraise(res, 3) end
    return res, meta
  end
  if phase == "init" then return in_init(st, call_direct, name, ...) end
  blocked(phase)
end

-- Every operation of the table and request: one generic forwarder each, nothing
-- per operation.
local forwarded = { "request" }
for name in pairs(core._operations()) do forwarded[#forwarded + 1] = name end
for _, name in ipairs(forwarded) do
  methods[name] = function(self, ...)
    return dispatch(check(self, name), name, ...)
  end
end
-- Each page is one forwarded call.
paging.install(methods, core._operations(), core._error_mt)

-- The upload: create_attachment as any call, then the PUT over a cosocket with the
-- bytes sent in pieces from the file (never all in memory), exactly the required
-- headers, and the C core judging the reply.
local PIECE = 65536

local function body_sender(s)
  if s.data then
    return function(sock) return sock:send(s.data) end
  end
  return function(sock)
    local f, err = io.open(s.path, "rb")
    if not f then return nil, err end
    while true do
      local piece = f:read(PIECE)
      if not piece then break end
      local ok, serr = sock:send(piece)
      if not ok then
        f:close()
        return nil, serr
      end
    end
    f:close()
    return true
  end
end

local function put_upload(client, url, headers, s, timeout)
  local ex = core._prepare_upload(client, url, headers, s.size, timeout)
  return cosocket.run(ex, body_sender(s))
end

function methods.upload_attachment(self, spec, opts)
  local st = check(self, "upload_attachment")
  local phase = get_phase()
  if phase == "init" then
    return in_init(st, function(client, _, ...) return client:upload_attachment(...) end,
                   "upload_attachment", spec, opts)
  end
  if not YIELDING[phase] then blocked(phase) end
  local ok, res, meta = pcall(upload.run, self, spec, opts, function(url, headers, s, timeout)
    return put_upload(st.client, url, headers, s, timeout)
  end)
  if not ok then reraise(res, 2) end
  return res, meta
end

-- client:all and client:each_result: the calls staged by the C core exactly as
-- plain Lua stages them (every entry checked before any traffic), each run by a
-- light thread over its own cosocket, at most `concurrency` at once.  Results have
-- the shape plain Lua gives them.
local spawn, wait, unpack = ngx.thread.spawn, ngx.thread.wait, table.unpack or unpack  -- luacheck: ignore 143

local function run_one(i, ex)
  return i, pcall(cosocket.run, ex)
end

local function each_in_threads(fname, st, calls, opts)
  local concurrency = batch.concurrency(fname, opts)
  local staged, n = batch.stage_all(fname, st.client, calls, core._prepare)
  local running, thread_of, started = {}, {}, 0
  return function()
    while #running < concurrency and started < n do
      started = started + 1
      local t = spawn(run_one, started, staged[started])
      running[#running + 1] = t
      thread_of[started] = t
    end
    if #running == 0 then return nil end
    -- wait() gives the first to end (already ended ones first) and its returns:
    -- the index says which thread it was
    local alive, i, ok, res, meta = wait(unpack(running))
    if not alive then error(i, 0) end  -- a bug in this file, not a failed call
    for k = 1, #running do
      if running[k] == thread_of[i] then
        table.remove(running, k)
        break
      end
    end
    thread_of[i] = nil
    if ok then return { ok = true, res = res, meta = meta }, i end
    return { ok = false, err = res }, i
  end
end

local function batch_method(fname)
  return function(self, calls, opts)
    local st = check(self, fname)
    local phase = get_phase()
    if phase == "init" then
      return in_init(st, function(client, _, ...) return client[fname](client, ...) end,
                     fname, calls, opts)
    end
    if not YIELDING[phase] then blocked(phase) end
    local ok, iter = pcall(each_in_threads, fname, st, calls, opts)
    if not ok then reraise(iter, 2) end
    if fname == "each_result" then return iter end
    local results = {}
    for r, i in iter do results[i] = r end
    return results
  end
end
methods.all = batch_method("all")
methods.each_result = batch_method("each_result")

function methods.close(self)
  local st = state[self]
  if st == nil then
    error("bad argument #1 to 'close' (linq.Client expected, got " .. type(self) .. ")", 2)
  end
  st.closed = true
end
Client.__close = methods.close

return M
