-- The baseline an OpenResty user writes by hand: ngx.socket.tcp, one GET with the
-- Authorization header, the status line and headers read line by line, the body by
-- its Content-Length, cjson.decode, and the connection back into nginx's pool.
-- Used by bench/nginx/fronts.lua; see bench/README.md ("Inside nginx").
-- luacheck: read globals ngx
local cjson = require("cjson")

local M = {}

local tcp = ngx.socket.tcp
local POOL_SIZE = 64      -- as linq's cosocket transport, so both keep the same pool

local host, port, auth

function M.init(base, key)
  host, port = base:match("^http://([^:/]+):(%d+)")
  port = tonumber(port)
  auth = "Bearer " .. key
end

-- GET path; returns the decoded body, or nil and an error.
function M.get(path)
  local sock = tcp()
  sock:settimeout(10000)
  local ok, err = sock:connect(host, port)
  if not ok then return nil, "connect: " .. err end
  local sent, serr = sock:send("GET " .. path .. " HTTP/1.1\r\nHost: " .. host .. ":" .. port ..
                               "\r\nAuthorization: " .. auth .. "\r\nAccept: application/json\r\n\r\n")
  if not sent then
    sock:close()
    return nil, "send: " .. serr
  end
  local line, rerr = sock:receive("*l")
  if not line then
    sock:close()
    return nil, "receive: " .. rerr
  end
  local status = tonumber(line:match("^HTTP/1%.%d (%d%d%d)"))
  local len, close
  while true do
    local h, herr = sock:receive("*l")
    if not h then
      sock:close()
      return nil, "receive: " .. herr
    end
    if h == "" then break end
    local name, value = h:match("^([^:]+):%s*(.-)%s*$")
    if name then
      name = name:lower()
      if name == "content-length" then
        len = tonumber(value)
      elseif name == "connection" and value:lower() == "close" then
        close = true
      end
    end
  end
  if not len then
    sock:close()
    return nil, "no Content-Length"
  end
  local body, berr = sock:receive(len)
  if not body then
    sock:close()
    return nil, "receive: " .. berr
  end
  if close then sock:close() else sock:setkeepalive(60000, POOL_SIZE) end
  if status ~= 200 then return nil, "status " .. tostring(status) end
  return cjson.decode(body)
end

return M
