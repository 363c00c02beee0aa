-- One benchmark client in a loop against the simulator (run by bench/run, under
-- sim/with-sim):   lua5.4|luajit bench/client.lua KIND SECONDS WARMUP COUNT [CALL MODE [CHAT_ID]]
--   KIND   linq    this module on one client: client:phone_numbers(), or CALL
--          socket  LuaSocket's socket.http.request + cjson.decode (a new
--                  connection per call, as socket.http does; phone numbers only)
--   COUNT  phone numbers (or chats, for list_chats) the reply must hold (checked
--          on the first call)
--   CALL   phone_numbers (default), get_chat (client:get_chat(CHAT_ID)) or
--          list_chats (client:list_chats{ limit = 20 })
--   MODE   the simulator's mode segments before /v3 (default api/partner; the chat
--          calls use ns/<name>, where bench/run made the chat)
-- Warms up for WARMUP seconds, then calls for SECONDS of wall clock and prints
--   calls=N wall=S cpu=S bytes=0
-- cpu is user + system time of this process (getrusage) over the measured calls.
local clock = require("benchclock")

local kind, seconds, warmup, count = arg[1], tonumber(arg[2]), tonumber(arg[3]), tonumber(arg[4])
local call_name, mode, chat_id = arg[5] or "phone_numbers", arg[6] or "api/partner", arg[7]
assert(kind and seconds and warmup and count,
  "usage: client.lua linq|socket SECONDS WARMUP COUNT [CALL MODE [CHAT_ID]]")
local url = assert(os.getenv("LINQ_SIM_URL"), "run under sim/with-sim")
local key = assert(os.getenv("LINQ_SIM_KEY"))

local call
-- The first reply is what was asked for.
local function check(r)
  if call_name == "get_chat" then
    assert(type(r) == "table" and r.id == chat_id, "expected chat " .. tostring(chat_id))
  elseif call_name == "list_chats" then
    assert(type(r.chats) == "table" and #r.chats == count, "expected " .. count .. " chats")
  else
    assert(type(r.phone_numbers) == "table" and #r.phone_numbers == count,
      "expected " .. count .. " phone numbers")
  end
end
if kind == "linq" then
  local linq = require("linq")
  local client = linq.new{ api_key = key, base_url = url .. "/" .. mode }
  if call_name == "get_chat" then
    assert(chat_id, "get_chat needs CHAT_ID")
    call = function() return (client:get_chat(chat_id)) end
  elseif call_name == "list_chats" then
    local params = { limit = 20 }
    call = function() return (client:list_chats(params)) end
  else
    assert(call_name == "phone_numbers", "CALL is phone_numbers, get_chat or list_chats")
    call = function() return (client:phone_numbers()) end
  end
elseif kind == "socket" then
  assert(call_name == "phone_numbers", "the socket client calls phone_numbers only")
  local http = require("socket.http")
  local ltn12 = require("ltn12")
  local cjson = require("cjson")
  local concat = table.concat
  local target = url .. "/" .. mode .. "/v3/phone_numbers"
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

check(call())

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
