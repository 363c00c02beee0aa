--- What bench/nginx/profile.lua measures as "linq, lean driver": lua/linq/cosocket.lua
-- with the Lua-side changes suggested by the nginx section of bench/README.md, to show
-- what they would save.  Not used by the module.  Against cosocket.lua:
--   * one ngx.update_time() per attempt instead of five per call (the attempt's start,
--     each of three left_ms() for settimeouts, one per read);
--   * no closure per attempt (left_ms took the deadline as an upvalue: LuaJIT cannot
--     compile FNEW, so every call aborted its trace and ran interpreted);
--   * one settimeouts before connect, none after it unless there was a TLS handshake;
--   * the { pool = name } options table made once per target, not per call.
-- luacheck: read globals ngx
local core = require("linq.core")

local M = {}

local ngx = ngx
local tcp, sleep, now, update_time = ngx.socket.tcp, ngx.sleep, ngx.now, ngx.update_time
local prepare = core._prepare
local format = string.format

local KEEPALIVE_MS = 60000
local POOL_SIZE = 64
local RECEIVE_BYTES = 65536

local function left_ms(deadline)
  local ms = (deadline - now()) * 1000
  return ms > 1 and ms or 1
end

local function fail_io(ex, sock, err, what)
  sock:close()
  if err == "timeout" then return ex:fail("timeout", what .. " timed out") end
  return ex:fail(what == "sending" and "send" or "receive", what .. " failed: " .. err)
end

local function attempt(ex, host, port, tls, opts, timeout, send_body)
  update_time()
  local deadline = now() + timeout
  local sock = tcp()
  local ms = timeout * 1000
  sock:settimeouts(ms, ms, ms)
  local ok, err = sock:connect(host, port, opts)
  if not ok then return ex:fail("connect", format("could not connect to %s: %s", host, err)) end
  if tls and sock:getreusedtimes() == 0 then
    local session, herr = sock:sslhandshake(nil, host, true)
    if not session then
      sock:close()
      return ex:fail("tls", "the TLS handshake failed: " .. tostring(herr))
    end
    local left = left_ms(deadline)
    sock:settimeouts(left, left, left)
  end
  local sent, serr = sock:send(ex:request())
  if sent and send_body then sent, serr = send_body(sock) end
  if not sent then return fail_io(ex, sock, serr, "sending") end
  local first = true
  while true do
    if not first then
      if now() >= deadline then
        sock:close()
        return ex:fail("timeout", format("no complete reply within %g s", timeout))
      end
      sock:settimeout(left_ms(deadline))
    end
    first = false
    local data, rerr = sock:receiveany(RECEIVE_BYTES)
    local verdict, delay
    if data then
      verdict, delay = ex:feed(data)
    elseif rerr == "closed" then
      verdict, delay = ex:feed("")
    else
      return fail_io(ex, sock, rerr, "receiving")
    end
    if verdict ~= "more" then
      if ex:keepalive() then sock:setkeepalive(KEEPALIVE_MS, POOL_SIZE) else sock:close() end
      return verdict, delay
    end
  end
end

local POOLS = {}   -- host -> port -> tls -> { pool = name }

local function pool_opts(host, port, tls)
  local by_host = POOLS[host]
  if not by_host then by_host = {}; POOLS[host] = by_host end
  local by_port = by_host[port]
  if not by_port then by_port = {}; by_host[port] = by_port end
  local o = by_port[tls]
  if not o then
    o = { pool = format("linq:%s:%d:%s", host, port, tls and "tls" or "tcp") }
    by_port[tls] = o
  end
  return o
end

function M.run(ex, send_body)
  local host, port, tls = ex:target()
  local opts = pool_opts(host, port, tls)
  local timeout = ex:timeout()
  while true do
    local verdict, delay = attempt(ex, host, port, tls, opts, timeout, send_body)
    if verdict ~= "retry" then return ex:result() end
    if delay > 0 then sleep(delay) end
  end
end

function M.call(client, name, ...)
  return M.run(prepare[name](client, ...))
end

return M
