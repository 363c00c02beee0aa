-- api/experiences.lua: GET /v3/experiences and /v3/experiences/{experience}
-- (api-v3.md 4), two fixed experiences from config.lua.

-- luacheck: std ngx_lua

local C = require("common")
local config = require("config")

local _M = {}

function _M.list()
  return 200, { experiences = config.EXPERIENCES }
end

function _M.get(_, p)
  local e = config.experience(p.experience)
  if not e then C.not_found(4004, "Experience not found: " .. p.experience) end
  return 200, e
end

return _M
