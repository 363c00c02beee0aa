-- api/blocked_handles.lua: GET/POST/DELETE /v3/blocked_handles (api-v3.md 4).
-- A direct send to a blocked handle is refused with 403/2026 (model.lua).

-- luacheck: std ngx_lua

local json = require("json")
local C = require("common")
local model = require("model")

local _M = {}

-- GET /v3/blocked_handles -> {blocked_handles: [{blocked_at, handle, reason?}]}
function _M.list(ctx)
  local st = ctx.st
  local out = json.array()
  for i = 1, st:len("blocked") do
    local b = st:get("blocked", st:at("blocked", i))
    if b then out[#out + 1] = model.public(b) end
  end
  return 200, { blocked_handles = out }
end

-- POST /v3/blocked_handles {handle, reason?} -> {blocked_handle}; blocking
-- twice returns the first block (idempotent).
function _M.block(ctx)
  local st = ctx.st
  local body = C.json_body()
  local handle = C.handle(C.need(body, "handle"), "handle")
  local reason = C.opt_string(body, "reason")
  local b = st:get("blocked", handle)
  if not b then
    b = { blocked_at = C.iso(), handle = handle, reason = reason or json.null }
    st:put("blocked", handle, b)
    if st:kadd("blocked_listed:" .. handle, "1") then st:append("blocked", handle) end
  end
  return 200, { blocked_handle = model.public(b) }
end

-- DELETE /v3/blocked_handles {handle} -> 200 with a small JSON body (the one
-- void operation that answers with JSON); unblocking twice is fine.
function _M.unblock(ctx)
  local st = ctx.st
  local body = C.json_body()
  local handle = C.handle(C.need(body, "handle"), "handle")
  st:delete("blocked", handle)
  return 200, { handle = handle, unblocked = true }
end

return _M
