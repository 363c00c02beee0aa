--- Inside nginx: a call over ngx.socket.tcp, driven by the C core's exchange.
-- The C core builds the request (the same operation table and checks as outside
-- nginx), parses the reply with http-parser, judges each attempt and makes res,
-- meta or the error; this file only connects, sends, reads, sleeps between
-- attempts and puts the connection back in nginx's keepalive pool.  The worker's
-- event loop does the waiting, so a thousand calls in flight cost nothing.
local core = require("linq.core")

local M = {}

local ngx = ngx
local tcp, sleep, now = ngx.socket.tcp, ngx.sleep, ngx.now
local prepare = core._prepare
local find, format, setmetatable = string.find, string.format, setmetatable

local KEEPALIVE_MS = 60000   -- an idle connection stays in nginx's pool this long
local POOL_SIZE = 64         -- idle connections kept per host and port, per worker
local RECEIVE_BYTES = 65536

-- What went wrong, said so that the reader knows which nginx.conf line to add.
local function explain_connect(err, host)
  if find(err, "no resolver defined", 1, true) then
    return "config", format("nginx cannot resolve %s: add `resolver <your DNS server>;` " ..
                            "(for example `resolver 127.0.0.53;` on systemd-resolved) to " ..
                            "nginx.conf's http block", host)
  end
  if err == "timeout" then return "timeout", "connecting timed out" end
  if find(err, "could not be resolved", 1, true) then return "resolve", err end
  return "connect", format("could not connect to %s: %s", host, err)
end

local function explain_tls(err, host)
  if err == "timeout" then return "timeout", "the TLS handshake timed out" end
  if find(err, "host mismatch", 1, true) then
    return "tls", format("TLS verification failed (%s): the server's certificate does not " ..
                         "name %s", err, host)
  end
  if find(err, "certificate", 1, true) or find(err, "verify", 1, true) then
    return "tls", format("TLS verification failed (%s): nginx verifies cosocket TLS against " ..
                         "lua_ssl_trusted_certificate; add `lua_ssl_trusted_certificate " ..
                         "/etc/ssl/certs/ca-certificates.crt;` (Debian's bundle) and " ..
                         "`lua_ssl_verify_depth 5;` to nginx.conf's http block", err)
  end
  -- a reset or a close in the middle of the handshake: worth another attempt
  return "connect", "the TLS handshake failed: " .. err
end

local function fail_io(ex, sock, err, what)
  sock:close()
  if err == "timeout" then return ex:fail("timeout", what .. " timed out") end
  return ex:fail(what == "sending" and "send" or "receive", what .. " failed: " .. err)
end

-- Milliseconds left before the deadline.  nginx's cached clock is current after
-- every wait (each yield resumes from the event loop), so no update_time here.
local function left_ms(deadline)
  local ms = (deadline - now()) * 1000
  return ms > 1 and ms or 1
end

-- connect()'s options, one table per pool for the worker's life.
local pool_options = setmetatable({}, { __index = function(t, pool)
  local o = { pool = pool }
  t[pool] = o
  return o
end })

-- One attempt: connect (or reuse a pooled connection), send, read until the
-- exchange has a verdict.  `timeout` seconds bound it from its start.
local function attempt(ex, host, port, tls, pool, timeout, connect_timeout, send_body)
  local deadline = now() + timeout
  local sock = tcp()
  local ms = timeout * 1000
  sock:settimeouts(connect_timeout and connect_timeout * 1000 or ms, ms, ms)
  local ok, err = sock:connect(host, port, pool_options[pool])
  if not ok then return ex:fail(explain_connect(err, host)) end
  if sock:getreusedtimes() == 0 then
    -- a new connection waited for connect (and TLS): what is left bounds the rest
    local left = left_ms(deadline)
    sock:settimeouts(left, left, left)
  end
  if tls and sock:getreusedtimes() == 0 then
    -- When the handshake ends within its first step and verification fails,
    -- this lua-resty-core raises an assertion instead of returning the error (and
    -- with `false` it would report success on a closed socket): caught here and
    -- taken for the failed verification it is.
    local ran, session, herr = pcall(sock.sslhandshake, sock, nil, host, true)
    if not ran then
      sock:close()
      return ex:fail("tls", format("TLS verification of %s failed (the handshake was refused " ..
                                   "at once; if lua_ssl_trusted_certificate is set, check it " ..
                                   "holds the CA of %s): nginx verifies cosocket TLS against " ..
                                   "lua_ssl_trusted_certificate; add `lua_ssl_trusted_certificate " ..
                                   "/etc/ssl/certs/ca-certificates.crt;` (Debian's bundle) to " ..
                                   "nginx.conf's http block", host, host))
    end
    if not session then
      sock:close()
      return ex:fail(explain_tls(herr, host))
    end
    local left = left_ms(deadline)
    sock:settimeouts(left, left, left)
  end
  local sent, serr = sock:send(ex:request())
  if sent and send_body then sent, serr = send_body(sock) end
  if not sent then return fail_io(ex, sock, serr, "sending") end
  local first = not send_body  -- after a streamed body, the read gets what is left
  while true do
    if now() >= deadline then
      sock:close()
      return ex:fail("timeout", format("no complete reply within %g s", timeout))
    end
    if not first then sock:settimeout(left_ms(deadline)) end  -- the rest of the budget
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

-- Runs an exchange to its end: attempts, and ngx.sleep between them.
function M.run(ex, send_body)
  local host, port, tls = ex:target()
  local pool = format("linq:%s:%d:%s", host, port, tls and "tls" or "tcp")
  local timeout, connect_timeout = ex:timeout()
  while true do
    local verdict, delay = attempt(ex, host, port, tls, pool, timeout, connect_timeout, send_body)
    if verdict ~= "retry" then return ex:result() end
    if delay > 0 then sleep(delay) end
  end
end

-- client[name](client, ...) over a cosocket; client is the C client (used only to
-- build the request: its libcurl handle stays unused here).
function M.call(client, name, ...)
  local make = prepare[name]
  local ex = make(client, ...)   -- every argument check, before any traffic
  return M.run(ex)
end

return M
