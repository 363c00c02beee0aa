-- api/capability.lua: POST /v3/capability/check_imessage and /check_rcs
-- (api-v3.md 3.10) -> {address, available}.
--
-- Deterministic answers for tests: an address whose local part (number or
-- email user) ends in "0000" has neither iMessage nor RCS; emails have no RCS.

-- luacheck: std ngx_lua

local C = require("common")

local find = string.find

local _M = {}

local function unavailable(address)
  return find(address, "0000$") or find(address, "0000@") ~= nil
end

local function check(rcs)
  local body = C.json_body()
  local address = C.need(body, "address")
  if rcs then
    C.e164(address, "address")
  else
    address = C.handle(address, "address")
  end
  if C.present(body.from) then C.e164(body.from, "from") end
  return 200, { address = address, available = not unavailable(address) }
end

function _M.check_imessage() return check(false) end
function _M.check_rcs() return check(true) end

return _M
