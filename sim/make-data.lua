-- make-data.lua: writes a phone-number list body with N numbers to stdout.
--
--   lua5.4 sim/make-data.lua 10000 > /tmp/numbers.json
--   sim/start --data /tmp/numbers.json PREFIX
--
-- Output is deterministic (fixed key order). Every number has id, E.164
-- phone_number, forwarding_number (a string for even indexes, JSON null for
-- odd ones), health_status and reputation {status, doc_url}; statuses cycle
-- HEALTHY / AT_RISK / CRITICAL.

local cjson = require("cjson")

local n = tonumber(arg[1] or "")
if not n or n < 0 or n ~= math.floor(n) then
  io.stderr:write("usage: lua5.4 make-data.lua N > file.json\n")
  os.exit(2)
end
n = math.floor(n)

local STATUSES = { "HEALTHY", "AT_RISK", "CRITICAL" }
local ANCHORS = { "healthy", "at-risk", "critical" }
local HEALTH_URL = "https://docs.linqapp.com/guides/phone-numbers/phone-health#"
local REPUTATION_URL = "https://docs.linqapp.com/guides/phone-numbers/phone-reputation#"

-- cjson escapes "/" as "\/"; keep URLs readable (the values need no escaping).
local function str(s)
  return (cjson.encode(s):gsub("\\/", "/"))
end

local function number(i)
  -- +1 NPA NXX XXXX with NPA 200..999 and exchange 200..999
  local npa = 200 + (i // 8000000) % 800
  local nxx = 200 + (i // 10000) % 800
  return string.format("+1%03d%03d%04d", npa, nxx, i % 10000)
end

local out = {}
for i = 0, n - 1 do
  local h = i % 3 + 1
  local r = (i // 3) % 3 + 1
  local fwd = (i % 2 == 0) and str(number(i + 5000000)) or "null"
  out[#out + 1] = string.format(
    '{"id":"550e8400-e29b-41d4-a716-%012x","phone_number":%s,'
      .. '"forwarding_number":%s,'
      .. '"health_status":{"status":%s,"doc_url":%s},'
      .. '"reputation":{"status":%s,"doc_url":%s}}',
    i, str(number(i)), fwd,
    str(STATUSES[h]), str(HEALTH_URL .. ANCHORS[h]),
    str(STATUSES[r]), str(REPUTATION_URL .. ANCHORS[r]))
end

io.write('{"phone_numbers":[', table.concat(out, ","), "]}\n")
