-- One benchmark client in a loop against the simulator (run by bench/run, under
-- sim/with-sim):   lua5.4|luajit bench/client.lua KIND SECONDS WARMUP COUNT
--   KIND   linq    this module: client:phone_numbers() on one client
--          socket  LuaSocket's socket.http.request + cjson.decode (a new
--                  connection per call, as socket.http does)
--   COUNT  phone numbers the list must hold (checked on the first call)
-- Warms up for WARMUP seconds, then calls for SECONDS of wall clock and prints
--   calls=N wall=S cpu=S bytes=0
-- cpu is user + system time of this process (getrusage) over the measured calls.
local clock = require("benchclock")

local kind, seconds, warmup, count = arg[1], tonumber(arg[2]), tonumber(arg[3]), tonumber(arg[4])
assert(kind and seconds and warmup and count, "usage: client.lua linq|socket SECONDS WARMUP COUNT")
local url = assert(os.getenv("LINQ_SIM_URL"), "run under sim/with-sim")
local key = assert(os.getenv("LINQ_SIM_KEY"))

local call
if kind == "linq" then
  local linq = require("linq")
  local client = linq.new{ api_key = key, base_url = url .. "/api/partner" }
  call = function() return (client:phone_numbers()) end
elseif kind == "socket" then
  local http = require("socket.http")
  local ltn12 = require("ltn12")
  local cjson = require("cjson")
  local concat = table.concat
  local target = url .. "/api/partner/v3/phone_numbers"
  local headers = {
    ["authorization"] = "Bearer " .. key,
    ["accept"] = "application/json",
    ["user-agent"] = "linq-bench-luasocket/1",
  }
  call = function()
    local parts = {}
    local ok, status = http.request{ url = target, headers = headers, sink = ltn12.sink.table(parts) }
    if ok == nil or status ~= 200 then error("socket.http: " .. tostring(status)) end
    return cjson.decode(concat(parts))
  end
else
  error("unknown client kind " .. tostring(kind))
end

local first = call()
assert(type(first.phone_numbers) == "table" and #first.phone_numbers == count,
  "expected " .. count .. " phone numbers")
first = nil -- luacheck: ignore

local wall, cpu = clock.wall, clock.cpu
local t0 = wall()
repeat call() until wall() - t0 >= warmup

local calls = 0
local c0 = cpu()
t0 = wall()
local t
repeat
  call()
  calls = calls + 1
  t = wall()
until t - t0 >= seconds
local c1 = cpu()
io.write(string.format("calls=%d wall=%.6f cpu=%.6f bytes=0\n", calls, t - t0, c1 - c0))
