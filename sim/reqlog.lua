-- reqlog.lua: the request log of the modes' id=<ID> segments.
--
-- Every request whose mode has id=<ID> is recorded (method, raw path, raw
-- query, headers with lower-case names, body up to 64 KiB) in
-- lua_shared_dict sim_log; GET /log/<ID> serves the last 100 oldest first,
-- DELETE /log/<ID> clears them. A test reads it to see what a client really
-- sent on each attempt (e.g. the same Idempotency-Key on every retry).
--
-- Keys: n:<ID> (count, atomic incr), e:<ID>:<i> (entry i as JSON). Only the
-- last KEEP entries are kept; the dict may evict old logs when full (logs are
-- a test aid, the API state lives in another dict).

-- luacheck: std ngx_lua

local json = require("json")
local C = require("common")

local ngx = ngx
local format, find, sub = string.format, string.find, string.sub

local _M = {}

local KEEP = 100
local MAX_BODY = 65536

local dict

function _M.init()
  dict = ngx.shared.sim_log
  if not dict then error("sim: lua_shared_dict sim_log is missing") end
end

-- The body (first MAX_BODY bytes) and its full size, or nil, 0.
local function body_excerpt()
  ngx.req.read_body()
  local data = ngx.req.get_body_data()
  if data then return sub(data, 1, MAX_BODY), #data end
  local file = ngx.req.get_body_file()
  if not file then return nil, 0 end
  local f = io.open(file, "rb")
  if not f then return nil, 0 end
  local size = f:seek("end")
  f:seek("set", 0)
  local s = f:read(MAX_BODY)
  f:close()
  return s or "", size
end

function _M.record(id)
  local uri = ngx.var.request_uri
  local q = find(uri, "?", 1, true)
  local body, size = body_excerpt()
  local n = dict:incr("n:" .. id, 1, 0)
  if not n then return end
  local entry = json.encode({
    seq = n, time = C.iso(), method = ngx.req.get_method(),
    path = q and sub(uri, 1, q - 1) or uri, query = q and sub(uri, q + 1) or "",
    headers = ngx.req.get_headers(100), body = body or json.null, body_size = size,
    body_truncated = size > MAX_BODY,
  })
  dict:set(format("e:%s:%d", id, n), entry) -- may evict old entries: fine for a log
  if n > KEEP then dict:delete(format("e:%s:%d", id, n - KEEP)) end
end

-- GET /log/<ID> -> {"requests":[...]}; DELETE clears. Returns status, body.
function _M.serve(id)
  local n = dict:get("n:" .. id) or 0
  local first = n - KEEP + 1
  if first < 1 then first = 1 end
  if ngx.req.get_method() == "DELETE" then
    for i = first, n do dict:delete(format("e:%s:%d", id, i)) end
    dict:delete("n:" .. id)
    return 200, '{"requests":[]}'
  end
  local parts = {}
  for i = first, n do
    local e = dict:get(format("e:%s:%d", id, i))
    if e then parts[#parts + 1] = e end
  end
  return 200, '{"requests":[' .. table.concat(parts, ",") .. "]}"
end

return _M
