-- idem.lua: idempotent creates. A repeated key (per namespace and operation
-- scope) gets the first response again, byte for byte, and nothing new is
-- stored. Two workers racing with the same key are serialised by the
-- store's atomic reservation (Store:idem_reserve).

-- luacheck: std ngx_lua

local json = require("json")
local C = require("common")

local ngx = ngx
local type, pcall, error = type, pcall, error

local _M = {}

-- The Idempotency-Key request header, or nil.
function _M.header_key()
  local k = ngx.var.http_idempotency_key
  if k == nil or k == "" then return nil end
  return k
end

local function replayed(status, body)
  ngx.header["x-idempotent-replayed"] = "true"
  return status, body
end

-- The stored response of an earlier request with this key: status, body
-- (handlers call it before validating, so a retry gets the first answer even
-- if the same request would now fail), or nil.
function _M.replay(ctx, scope, key)
  if not key then return nil end
  local status, body = ctx.st:idem_get(scope, key)
  if status then return replayed(status, body) end
  return nil
end

-- message.idempotency_key of a body, when it is a non-empty string.
function _M.message_key(body)
  local m = body.message
  local k = type(m) == "table" and m.idempotency_key
  if type(k) == "string" and k ~= "" then return k end
  return nil
end

-- Runs fn() -> status, table|string once per (scope, key) and returns
-- status, body (a string). Without a key fn simply runs. When fn fails
-- (common.fail or a Lua error) the key is released, so a corrected retry can
-- still succeed.
function _M.run(ctx, scope, key, fn)
  if not key then return fn() end
  local st = ctx.st
  local status, body = st:idem_get(scope, key)
  if status then return replayed(status, body) end
  local first, s2, b2 = st:idem_reserve(scope, key)
  if not first then
    if s2 then return replayed(s2, b2) end
    C.fail(409, 2015, "A request with this idempotency key is still in progress")
  end
  local ok, s, obj = pcall(fn)
  if not ok then
    st:idem_release(scope, key)
    error(s, 0)
  end
  body = type(obj) == "table" and json.encode(obj) or obj
  st:idem_store(scope, key, s, body)
  return s, body
end

return _M
