-- The three fronts of the nginx section of `make bench` (bench/nginx/app.conf), each
-- answering the wrk client with the same small JSON derived from the phone list:
--   linq(delay)     client:phone_numbers() on a client made once per worker
--   hand(delay)     bench/nginx/handwritten.lua: a cosocket client + cjson, by hand
--   capture(delay)  ngx.location.capture to /_up/<delay> (proxy_pass to an upstream
--                   block with keepalive 32), then cjson.decode
-- delay is "0" (the simulator's api/partner) or "50" (slow/50: the answer after 50 ms).
-- inflight(front, n): n calls at once in this request (ngx.thread.spawn), 50 ms upstream.
-- gc(): a full collection, before the RSS samples.
-- luacheck: globals ngx
local cjson = require("cjson")
local linq = require("linq")
local hand = require("handwritten")

local M = {}

local sim = assert(os.getenv("LINQ_SIM_URL"), "LINQ_SIM_URL is not set")
local key = assert(os.getenv("LINQ_SIM_KEY"), "LINQ_SIM_KEY is not set")
hand.init(sim, key)

local MODE = { ["0"] = "/api/partner", ["50"] = "/slow/50" }
local PATH = { ["0"] = "/api/partner/v3/phone_numbers", ["50"] = "/slow/50/v3/phone_numbers" }
local UP = { ["0"] = "/_up/0", ["50"] = "/_up/50" }

-- One linq client per base URL, made once per worker (module state lives per worker).
local clients = {}
for delay, mode in pairs(MODE) do
  clients[delay] = linq.new{ api_key = key, base_url = sim .. mode }
end

local fetch = {}

function fetch.linq(delay)
  local client = clients[delay]
  local ok, res = pcall(client.phone_numbers, client)
  if not ok then return nil, tostring(res) end
  return res
end

function fetch.hand(delay)
  return hand.get(PATH[delay])
end

local capture = ngx.location.capture
function fetch.capture(delay)
  local r = capture(UP[delay])
  if r.status ~= 200 then return nil, "status " .. tostring(r.status) end
  return cjson.decode(r.body)
end

local function answer(res, err)
  if not res then
    ngx.status = 502
    ngx.print(cjson.encode{ error = err })
    return
  end
  local list = res.phone_numbers
  ngx.print(cjson.encode{ count = #list, first = list[1].phone_number })
end

function M.linq(delay) answer(fetch.linq(delay)) end
function M.hand(delay) answer(fetch.hand(delay)) end
function M.capture(delay) answer(fetch.capture(delay)) end

-- n calls of one front in flight at once, on the 50 ms upstream.
local spawn, wait = ngx.thread.spawn, ngx.thread.wait
function M.inflight(front, n)
  local f = assert(fetch[front], "unknown front")
  n = tonumber(n) or 1000
  local function one()
    local ok, res, err = pcall(f, "50")
    if ok and res and res.phone_numbers and #res.phone_numbers > 0 then return true end
    return false, ok and err or res
  end
  ngx.update_time()
  local t0 = ngx.now()
  local threads = {}
  for i = 1, n do threads[i] = spawn(one) end
  local good, bad, first = 0, 0, nil
  for i = 1, n do
    local ok, fine, err = wait(threads[i])
    if ok and fine then
      good = good + 1
    else
      bad = bad + 1
      first = first or tostring(err or fine)
    end
  end
  ngx.update_time()
  ngx.print(cjson.encode{ front = front, n = n, ok = good, failed = bad,
                          ms = math.floor((ngx.now() - t0) * 1000 + 0.5), first_error = first })
end

-- /gc: a full collection in this worker; answers the Lua heap in KiB.
function M.gc()
  collectgarbage()
  collectgarbage()
  ngx.print(string.format('{"lua_kb":%.0f}', collectgarbage("count")))
end

return M
