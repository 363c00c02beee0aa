-- Peak resident memory of this module under a big list (run by bench/run, under
-- sim/with-sim --data big.json):   lua5.4 bench/memory.lua CALLS COUNT
-- Baseline: VmRSS after require("linq") and linq.new, before any call.  Then
-- CALLS calls of client:phone_numbers() in a plain loop (each result dropped when
-- the next arrives, the collector left alone), then VmHWM.  Also the Lua heap
-- that one decoded list holds.  Prints  base_kb=.. peak_kb=.. result_kb=..
-- With FILE, the same without HTTP and without this module, for comparison: each
-- "call" reads FILE into a string and decodes it with lua-cjson.
local calls, count, file = tonumber(arg[1]), tonumber(arg[2]), arg[3]
assert(calls and count, "usage: memory.lua CALLS COUNT [FILE]")

local function status(field)
  local f = assert(io.open("/proc/self/status"))
  local s = f:read("a")
  f:close()
  return tonumber(s:match(field .. ":%s*(%d+) kB"))
end

local client
if file then
  local cjson = require("cjson")
  client = { phone_numbers = function()
    local f = assert(io.open(file, "rb"))
    local body = f:read("a")
    f:close()
    return cjson.decode(body)
  end }
else
  local linq = require("linq")
  client = linq.new{ api_key = assert(os.getenv("LINQ_SIM_KEY")),
    base_url = assert(os.getenv("LINQ_SIM_URL")) .. "/api/partner" }
end
collectgarbage()
collectgarbage()
local base = status("VmRSS")

for _ = 1, calls do
  local res = client:phone_numbers()
  assert(#res.phone_numbers == count)
end
local peak = status("VmHWM")

-- The Lua heap that one decoded result keeps alive.
collectgarbage()
collectgarbage()
local k0 = collectgarbage("count")
local res = client:phone_numbers()
collectgarbage()
collectgarbage()
local k1 = collectgarbage("count")
assert(#res.phone_numbers == count)

io.write(string.format("base_kb=%d peak_kb=%d result_kb=%.0f\n", base, peak, k1 - k0))
