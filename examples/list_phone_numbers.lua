-- Lists the partner's phone numbers with their health.
--
--   LINQ_API_V3_API_KEY=... lua5.4 examples/list_phone_numbers.lua    (the real API)
--   make demo                                                         (the local simulator)
--
-- The key and the base URL come from the environment (LINQ_API_V3_API_KEY,
-- LINQ_API_V3_BASE_URL), as in every official Linq SDK.
local linq = require("linq")

local function fail(err)
  -- A linq error prints as one line: type, status, code, message and doc_url.
  io.stderr:write(linq.is_error(err) and tostring(err) or tostring(err), "\n")
  os.exit(1)
end

local ok, client = pcall(linq.new)
if not ok then fail(client) end

local res, meta
ok, res, meta = pcall(client.phone_numbers, client)
if not ok then fail(res) end

print(string.format("%d phone number(s) (request %s)", #res.phone_numbers,
                    meta.request_id or "-"))
for _, n in ipairs(res.phone_numbers) do
  -- `reputation` replaces the deprecated `health_status`; servers may send either.
  local health = n.reputation or n.health_status or {}
  print(string.format("  %-16s %-9s %s", n.phone_number, tostring(health.status),
                      health.doc_url or ""))
end
client:close()
