-- The helper named by .busted, so that plain `busted` (or `busted spec/x_spec.lua`)
-- from the repository root runs the specs as `make test` does.
--
-- Most specs need the simulator, and they and the interpreters they start read
-- LINQ_SIM_URL, LUA_CPATH and friends from the process environment, which Lua
-- cannot change for itself.  So when that environment is missing, this helper
-- builds the module, runs this very busted command again (its arguments read from
-- /proc/self/cmdline, so quoting survives) under sim/with-sim with the environment
-- `make test` sets, and exits with its status.  The run it starts finds the
-- environment and goes on to the specs; so do `make test`, `make asan` and
-- `make valgrind`.
--
-- busted's script starts under `lua` (5.2 on Debian) by its #! line; started so,
-- the run again is under lua5.4.  (`lua = "lua5.4"` in .busted would switch too,
-- but busted's own switch joins the arguments unquoted: --filter='a b' breaks.)
if os.getenv("LINQ_SIM_URL") and os.getenv("LUA_CPATH") then return end

local function fail(msg)
  io.stderr:write("spec/sim_helper.lua: ", msg, "\n")
  os.exit(1)
end

if os.getenv("LINQ_SIM_HELPER_RAN") then
  fail("the environment is still missing after a restart; run `make test` instead")
end

-- The names the Makefile gives builds: build/lua5.4, build/luajit.
local interpreter = type(arg) == "table" and arg[-1] or ""
local by_shebang = interpreter == "lua" or interpreter:match("/lua$") ~= nil
local lua = (by_shebang and "lua5.4") or (type(jit) == "table" and "luajit") or
  ("lua" .. _VERSION:match("%d+%.%d+"))

local function quote(s)
  return "'" .. s:gsub("'", "'\\''") .. "'"
end

-- os.execute's status under 5.1/LuaJIT (a wait status) and under 5.2+.
local function status(a, how, code)
  if type(a) == "number" then
    if a > 255 then return math.floor(a / 256) end
    return a == 0 and 0 or 128 + a
  end
  if how == "signal" then return 128 + code end
  return code or (a and 0 or 1)
end

local f = io.open("/proc/self/cmdline", "rb")
local cmdline = f and f:read("*a")
if f then f:close() end
if not cmdline or cmdline == "" then
  fail("cannot read /proc/self/cmdline; run `make test LUA=" .. lua .. "`, or busted under " ..
       "sim/with-sim with LUA_PATH and LUA_CPATH set as the Makefile's TEST_ENV does")
end
local argv = {}
for a in cmdline:gmatch("([^%z]*)%z") do argv[#argv + 1] = a end
if by_shebang then argv[1] = lua end
for i, a in ipairs(argv) do argv[i] = quote(a) end

-- The nginx specs load the LuaJIT build whatever the interpreter is (nginx runs
-- LuaJIT), as in `make test`.
local build = "make -s --no-print-directory all LUA=" .. lua ..
  " && make -s --no-print-directory all LUA=luajit BUILD=build/luajit"
if status(os.execute(build)) ~= 0 then fail("the build failed: " .. build) end

-- The build and the specs come first; the caller's own paths stay after them.
local function prefixed(var, first)
  return var .. "=" .. quote(first .. ";" .. (os.getenv(var) or ";"))
end
local env = table.concat({
  "env", "LINQ_SIM_HELPER_RAN=1",
  prefixed("LUA_PATH", "./lua/?.lua;./spec/?.lua"),
  prefixed("LUA_CPATH", "./build/" .. lua .. "/?.so"),
  "LINQ_TEST_LUA=" .. lua,
  "NO_PROXY=127.0.0.1,localhost", "no_proxy=127.0.0.1,localhost",
}, " ")
local with_sim = os.getenv("LINQ_SIM_URL") and "" or "sim/with-sim "
os.exit(status(os.execute(env .. " " .. with_sim .. table.concat(argv, " "))))
