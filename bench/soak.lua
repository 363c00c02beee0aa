-- The soak: many calls on ONE client against the simulator, successes mixed with
-- every kind of error, then a check that resident memory settled and that no file
-- descriptor was left behind.  Run with `make soak` (SOAK_CALLS, default 100000).
local linq = require("linq")

local calls = tonumber(arg[1]) or 100000
local url = assert(os.getenv("LINQ_SIM_URL"), "run under sim/with-sim (make soak)")
local key = assert(os.getenv("LINQ_SIM_KEY"))
local phone_id = "550e8400-e29b-41d4-a716-446655440000"

-- One slot of a 100-call cycle each: what to call and what must come back.
local kinds = {
  { n = 63, name = "list", path = "/api/partner/v3/phone_numbers" },
  { n = 4, name = "update", method = "PUT", path = "/api/partner/v3/phone_numbers/" .. phone_id,
    body = { forwarding_number = "+12025550100" } },
  { n = 4, name = "500", path = "/status/500/v3/phone_numbers", want = "InternalServerError" },
  { n = 4, name = "429+retry", path = "/status/429/retry-after-ms=0/v3/phone_numbers",
    want = "RateLimitError", retries = 1 },
  { n = 3, name = "404", path = "/status/404/v3/phone_numbers", want = "NotFoundError" },
  { n = 3, name = "401", path = "/api/partner/v3/phone_numbers", want = "AuthenticationError",
    headers = { Authorization = "Bearer wrong" } },
  { n = 3, name = "html502", path = "/html502/v3/phone_numbers", want = "InternalServerError" },
  { n = 3, name = "malformed", path = "/body/200/malformed/v3/phone_numbers",
    want = "APIResponseValidationError" },
  { n = 3, name = "nested", path = "/body/200/nested/v3/phone_numbers",
    want = "APIResponseValidationError" },
  { n = 3, name = "reset", path = "/reset/v3/phone_numbers", want = "APIConnectionError",
    retries = 1 },
  { n = 3, name = "cut", path = "/cut/100/v3/phone_numbers", want = "APIConnectionError" },
  { n = 3, name = "gzip", path = "/gzip/v3/phone_numbers" },
  { n = 1, name = "timeout", path = "/slow/200/v3/phone_numbers", want = "APITimeoutError",
    timeout = 0.02, every = 10 },  -- one cycle in ten: they cost their timeout
}
local schedule = {}
for _, k in ipairs(kinds) do
  k.seen = 0
  for _ = 1, k.n do schedule[#schedule + 1] = k end
end
assert(#schedule == 100, "the cycle must have 100 slots, has " .. #schedule)

local client = linq.new{ api_key = key, base_url = url, max_retries = 0, max_retry_delay = 0 }

local function one(i)
  local k = schedule[(i - 1) % 100 + 1]
  if k.every and math.floor((i - 1) / 100) % k.every ~= 0 then k = schedule[1] end
  local ok, res = pcall(client.request, client, k.method or "GET", k.path, {
    body = k.body, headers = k.headers, max_retries = k.retries, timeout = k.timeout,
  })
  k.seen = k.seen + 1
  if k.want then
    if ok or not linq.is_error(res) or res.type ~= k.want then
      error(string.format("call %d (%s): wanted %s, got %s", i, k.name, k.want, tostring(res)))
    end
  elseif not ok then
    error(string.format("call %d (%s) failed: %s", i, k.name, tostring(res)))
  end
end

local pid = io.open("/proc/self/stat"):read("*l"):match("^%d+")
local function fds()
  local n = 0
  for _ in io.popen("ls /proc/" .. pid .. "/fd"):lines() do n = n + 1 end
  return n
end
local function rss_kib()
  local f = io.open("/proc/self/statm")
  local pages = tonumber(f:read("*l"):match("^%d+ (%d+)"))
  f:close()
  return pages * 4
end

local warm = math.max(1000, math.floor(calls / 20))
for i = 1, warm do one(i) end
collectgarbage()
collectgarbage()
local fd0, rss0 = fds(), rss_kib()
local t0 = os.clock()
local wall0 = os.time()
for i = warm + 1, calls do one(i) end
collectgarbage()
collectgarbage()
local fd1, rss1 = fds(), rss_kib()
client:close()

local mix = {}
for _, k in ipairs(kinds) do mix[#mix + 1] = k.name .. " " .. k.seen end
print(string.format("soak: %d calls on one client (%s)", calls, table.concat(mix, ", ")))
print(string.format("soak: after %d warm-up calls: RSS %d KiB -> %d KiB (%+d KiB), " ..
                    "descriptors %d -> %d, CPU %.1f s, about %d s", warm, rss0, rss1,
                    rss1 - rss0, fd0, fd1, os.clock() - t0, os.time() - wall0))
local bad = false
if rss1 - rss0 > 1024 then print("soak: FAIL: resident memory grew by more than 1 MiB"); bad = true end
if fd1 ~= fd0 then print("soak: FAIL: file descriptors were left behind"); bad = true end
os.exit(bad and 1 or 0)
