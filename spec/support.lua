-- Shared by the specs: where the simulator is, and small helpers to reach it.
-- The specs run under sim/with-sim (make test), which exports LINQ_SIM_URL/KEY.
local linq = require("linq")

local M = {}

-- Commands the specs start run without the sanitizer runtime that `make asan`
-- preloads into the interpreter (preloaded into curl, ASan hangs it at exit), and
-- load the plain build of the module.
local child_cpath = os.getenv("LINQ_CHILD_CPATH")
local CHILD = "env -u LD_PRELOAD -u ASAN_OPTIONS " ..
  (child_cpath and ("LUA_CPATH='" .. child_cpath .. "' ") or "")

-- os.execute for a shell command line; true when it exited 0.
function M.execute(cmd)
  local ok = os.execute(CHILD .. cmd)
  return ok == true or ok == 0
end

-- The output of a shell command line, trailing white space removed.
function M.read_command(cmd)
  local p = assert(io.popen(CHILD .. cmd))
  local s = p:read("*a")
  p:close()
  return (s:gsub("%s+$", ""))
end

function M.sleep(seconds)
  M.execute("sleep " .. seconds)
end

M.url = assert(os.getenv("LINQ_SIM_URL"), "run the specs through `make test` (sim/with-sim)")
M.key = assert(os.getenv("LINQ_SIM_KEY"))
M.lua = os.getenv("LINQ_TEST_LUA") or "lua5.4"

-- The base URL for one simulator mode, e.g. M.base("status/500").
function M.base(mode)
  return M.url .. "/" .. (mode or "api/partner")
end

-- A client on the simulator; retries do not wait unless a spec asks them to.
function M.client(opts)
  opts = opts or {}
  local o = { api_key = M.key, base_url = M.base(opts.mode), max_retry_delay = 0 }
  for k, v in pairs(opts) do
    if k ~= "mode" then o[k] = v end
  end
  return linq.new(o)
end

local counter = 0
-- A fresh id, so the simulator's per-id counters start at zero for each spec.
function M.id()
  counter = counter + 1
  return string.format("s%d-%d-%d", os.time(), math.random(1, 1e9), counter)
end

-- How many requests the simulator saw for an id.
function M.hits(id)
  local c = linq.new{ api_key = M.key, base_url = M.base("hits/" .. id), max_retries = 0 }
  local res = c:request("GET", "/v3/x")
  c:close()
  return res.hits
end

-- Runs f and returns the error it raised; fails the spec if it did not raise.
function M.raises(f, ...)
  local ok, err = pcall(f, ...)
  assert(not ok, "expected an error, the call succeeded")
  return err
end

-- Runs a Lua chunk in a child interpreter with the given environment variables,
-- returning its stdout, stderr and whether it exited 0.
function M.run_lua(env, code)
  local out = os.tmpname()
  local err = os.tmpname()
  local function quote(s)
    return "'" .. s:gsub("'", "'\\''") .. "'"
  end
  local parts = { "env" }
  for k, v in pairs(env) do
    parts[#parts + 1] = k .. "=" .. quote(v)
  end
  parts[#parts + 1] = M.lua .. " -e " .. quote(code)
  local cmd = table.concat(parts, " ") .. " >" .. out .. " 2>" .. err
  local ok = M.execute(cmd)
  local function slurp(p)
    local f = io.open(p, "rb")
    local s = f:read("*a")
    f:close()
    os.remove(p)
    return s
  end
  return slurp(out), slurp(err), ok
end

return M
