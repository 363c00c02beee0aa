-- The cosocket transport inside nginx (lua/linq/cosocket.lua over src/exchange.c),
-- under load and faults: many calls at once in one worker, a worker that keeps
-- serving while calls wait, a reload, TLS, deep replies, keepalive, retries, the
-- missing resolver, descriptors, and a client made in init_worker_by_lua.
-- The application nginx runs spec/nginx/cosocket.conf with the handlers of
-- spec/nginx_cosocket_handlers.lua.  Nothing here is decided by a clock: the specs
-- check counts, order and the simulator's hit log.
local linq = require("linq")
local cjson = require("cjson")
local support = require("support")
local nginx_app = require("nginx_app")

local TLS_URL = os.getenv("LINQ_SIM_TLS_URL")
local CA = os.getenv("LINQ_SIM_CA")
local SIM_PORT = support.url:match(":(%d+)$")

-- Percent-encodes a query value (mode paths carry "/" and "=").
local function enc(s)
  return (tostring(s):gsub("[^%w%-%._~]", function(ch) return string.format("%%%02X", ch:byte()) end))
end

-- Waits (at most about `tries` * 0.05 s) until f() is true; returns its last value.
local function until_true(f, tries)
  local v
  for _ = 1, tries or 200 do
    v = f()
    if v then return v end
    support.sleep(0.05)
  end
  return v
end

-- The DNS responder for "localhost" (spec/nginx/dns.pl): its port and a stop().
local function start_dns()
  local portfile = os.tmpname()
  os.remove(portfile)
  local pid = support.read_command("perl spec/nginx/dns.pl " .. portfile ..
                                   " 120 </dev/null >/dev/null 2>&1 & echo $!")
  local port = until_true(function()
    local f = io.open(portfile, "rb")
    if not f then return nil end
    local p = f:read("*l")
    f:close()
    return tonumber(p)
  end, 100)
  os.remove(portfile)
  assert(port, "spec/nginx/dns.pl did not start")
  return port, function() support.execute("kill " .. pid .. " 2>/dev/null") end
end

-- cosocket.conf with the TLS lines (or none) and the DNS port filled in.
local function conf(tls, dns_port)
  local template = nginx_app.read("spec/nginx/cosocket.conf")
  local lines = "# no lua_ssl_trusted_certificate"
  if tls then
    lines = 'lua_ssl_trusted_certificate "' .. CA .. '";\n    lua_ssl_verify_depth 2;'
  end
  return (template:gsub("%${(%u+)}", function(name)
    if name == "TLS" then return lines end
    if name == "DNS" then return tostring(dns_port) end
    return nil  -- PORT, ROOT, PREFIX: nginx_app.start fills them in
  end))
end

describe("the cosocket transport inside nginx", function()
  local app, http, dns_port, stop_dns

  setup(function()
    dns_port, stop_dns = start_dns()
    app = nginx_app.start(conf(true, dns_port), { ready = "/ready" })
    http = linq.new{ api_key = "unused", base_url = app.url, max_retries = 0, timeout = 30 }
  end)

  teardown(function()
    if http then http:close() end
    if app then app.stop() end
    if stop_dns then stop_dns() end
  end)

  local function get(path, client)
    local res = (client or http):request("GET", path)
    return res
  end

  local function call(base, opts)
    local q = "/call?base=" .. enc(base)
    for k, v in pairs(opts or {}) do q = q .. "&" .. k .. "=" .. enc(v) end
    return get(q)
  end

  local function call_resolved(base, client)
    return get("/call_resolved?base=" .. enc(base), client)
  end

  it("runs 1,000 calls at once in one worker, all of them to the end", function()
    local res = get("/many?n=1000&mode=" .. enc("slow/50"))
    assert.same({}, res.failures)
    assert.equal(1000, res.ok)
  end)

  it("answers a static file while 500 calls wait, and the 500 then finish", function()
    local id, tag = support.id(), support.id()
    local started = get("/start?n=500&key=" .. tag .. "&mode=" .. enc("slow/1000/id=" .. id))
    assert.is_true(started.started, tostring(started.err))
    -- All 500 have reached the simulator: the worker now has 500 calls waiting.
    local hits = until_true(function()
      local n = support.hits(id)
      return n >= 500 and n or nil
    end) or support.hits(id)
    assert.equal(500, hits)
    local static = get("/static.json")
    assert.equal(2, #static.phone_numbers)
    local state = get("/state")
    assert.is_nil(state["bg_done_" .. tag], "the static file waited for the calls")
    until_true(function() return get("/state")["bg_done_" .. tag] end, 300)
    state = get("/state")
    assert.is_true(state["bg_done_" .. tag])
    assert.equal("{}", state["bg_failures_" .. tag])
    assert.equal(500, state["bg_ok_" .. tag])
  end)

  describe("TLS over cosockets", function()
    local tls_port = TLS_URL:match(":(%d+)$")

    -- The same call n times in a row in one handler (of the app behind `client`,
    -- else the main one): the count of each outcome, and one error of each type.
    local function repeated(base, n, client)
      return get("/repeat_resolved?n=" .. n .. "&base=" .. enc(base), client)
    end

    it("verifies the simulator's certificate against lua_ssl_trusted_certificate", function()
      local id = support.id()
      local res = call_resolved(TLS_URL .. "/ns/spec-tls/id=" .. id)
      assert.is_true(res.ok, res.err and res.err.text)
      assert.equal(2, res.count)
      assert.equal(1, res.attempts)
      assert.equal(1, support.hits(id))
      res = repeated(TLS_URL .. "/api/partner", 20)
      assert.same({ success = 20 }, res.types)
    end)

    -- Failed at 970eb99 (fixed: cosocket.lua pcalls the handshake with nil and
    -- takes a raised error for the failed verification it is): a race.  When
    -- the handshake completes within lua-resty-core's first C call (a fast local
    -- peer: from 1 in 200 to 1 in 2 calls here) and verification then fails,
    -- ngx_lua has already closed the socket, and lua-resty-core 0.1.25's
    -- tcpsock:sslhandshake() either raises "resty/core/socket.lua:244: assertion
    -- failed!" (first argument nil: lua-resty-core issue #499; lua/linq/cosocket.lua
    -- at 67a11a5 does not pcall it, so the caller gets that plain string, not a
    -- linq error) or, with first argument false, returns true without looking at
    -- the verification result: the transport then sends on the closed socket and
    -- reports a retryable "sending failed: closed" (attempts 3).  Repeated 200
    -- times so that the race shows on every run.
    it("refuses a certificate for another host name with APIConnectionError, never retried", function()
      local id = support.id()
      local res = repeated("https://127.0.0.1:" .. tls_port .. "/ns/spec-tls/id=" .. id, 200)
      assert.equal(0, support.hits(id))           -- no request ever reached the server
      assert.same({ APIConnectionError = 200 }, res.types,
                   res.samples.lua and res.samples.lua.text)
      assert.equal(1, res.attempts, cjson.encode(res.messages))  -- the default max_retries is 2
    end)

    -- Failed at 67a11a5: explain_tls in lua/linq/cosocket.lua gave every error
    -- that mentions "certificate" the advice to add lua_ssl_trusted_certificate,
    -- also "certificate host mismatch", where the directive is there and the CA
    -- trusted: the base URL's host is what is wrong.
    it("does not advise lua_ssl_trusted_certificate when only the host name is wrong", function()
      local res = repeated("https://127.0.0.1:" .. tls_port .. "/api/partner", 20)
      local mismatch = 0
      for message in pairs(res.messages) do
        if message:find("host mismatch", 1, true) then
          mismatch = mismatch + 1
          assert.is_nil(message:find("add `lua_ssl_trusted_certificate", 1, true), message)
        end
      end
      assert.is_true(mismatch > 0, "no error named the host mismatch")
    end)

    describe("in an nginx without lua_ssl_trusted_certificate", function()
      local bare, client

      setup(function()
        bare = nginx_app.start(conf(false, dns_port), { ready = "/ready" })
        client = linq.new{ api_key = "unused", base_url = bare.url, max_retries = 0, timeout = 30 }
      end)

      teardown(function()
        if client then client:close() end
        if bare then bare.stop() end
      end)

      -- Failed at 970eb99: the handshake race above, hence 200 calls (a raised
      -- assertion, or "sending failed: closed" retried).
      it("fails with a message that says to add lua_ssl_trusted_certificate", function()
        local id = support.id()
        local res = repeated(TLS_URL .. "/ns/spec-tls/id=" .. id, 200, client)
        assert.equal(0, support.hits(id))
        assert.same({ APIConnectionError = 200 }, res.types,
                     res.samples.lua and res.samples.lua.text)
        assert.equal(1, res.attempts, cjson.encode(res.messages))
        for message in pairs(res.messages) do
          assert.matches("add `lua_ssl_trusted_certificate", message, 1, true)
        end
      end)

      -- Failed at 67a11a5: src/exchange.c copied the message of ex:fail() into
      -- char message[CURL_ERROR_SIZE] (256 bytes), and explain_tls's advice is
      -- longer: the error ended "... and `lua_ssl_verify_depth 5;` to".
      it("gives the advice whole, not cut at 255 bytes", function()
        local res = repeated(TLS_URL .. "/api/partner", 20, client)
        local advised = 0
        for message in pairs(res.messages) do
          if message:find("add `lua_ssl_trusted_certificate", 1, true) then
            advised = advised + 1
            assert.matches("nginx.conf's http block$", message)
          end
        end
        assert.is_true(advised > 0, "no error gave the advice")
      end)
    end)
  end)

  it("decodes a reply nested 150 deep into a table 150 deep", function()
    local res = get("/deep")
    assert.is_true(res.ok, res.err and res.err.text)
    assert.equal(0, res.numbers)
    assert.equal(150, res.depth)
    assert.equal("bottom", res.bottom)
    -- 10,000 deep (the simulator's body/200/nested): a structured error, the worker lives.
    assert.equal("APIResponseValidationError", res.very_deep.type)
  end)

  it("keeps connections alive, and survives a server that closes", function()
    local res = get("/keepalive")
    assert.is_number(res.echo[1])
    assert.equal(res.echo[1], res.echo[2])
    local own1, own2, closing, own3, own4 = res.own[1], res.own[2], res.own[3], res.own[4], res.own[5]
    local closing_late, own5 = res.own[6], res.own[7]
    for _, s in ipairs(res.own) do assert.is_true(s.ok, s.name .. ": " .. tostring(s.err and s.err.text)) end
    assert.equal(own1.connection, own2.connection)
    assert.equal("close", closing.closed)          -- the server did say Connection: close
    assert.equal(own2.connection, closing.connection)
    assert.are_not.equal(closing.connection, own3.connection)
    assert.equal(1, own3.attempts)                -- no dead pooled connection was tried
    assert.equal(own3.connection, own4.connection)
    -- Connection: close with the connection still open for a second: the client
    -- must close it itself, not pool it (nginx's pool would not notice in time).
    assert.equal("close", closing_late.closed)
    assert.equal(own4.connection, closing_late.connection)
    assert.are_not.equal(closing_late.connection, own5.connection)
    assert.equal(1, own5.attempts)
  end)

  describe("retries over cosockets", function()
    it("retries a 503 until it succeeds", function()
      local id = support.id()
      local res = call(support.base("flaky/2/503/id=" .. id))
      assert.is_true(res.ok, res.err and res.err.text)
      assert.equal(3, res.attempts)
      assert.equal(3, support.hits(id))
    end)

    -- Failed at 67a11a5: each retry opened a new connection.  ex:feed() answered
    -- "retry" after push_verdict() had called start_attempt(), which clears
    -- ex->complete and re-inits the parser, so the ex:keepalive() that
    -- lua/linq/cosocket.lua asks next was always false and a healthy keep-alive
    -- connection was closed after every 503/429 (with TLS, a new handshake per
    -- retry, in exactly the storms that retries are for).
    it("retries on the same kept-alive connection", function()
      local res = get("/retry_connections?k=" .. enc(support.id()))
      assert.is_true(res.ok, res.err and res.err.text)
      assert.equal(3, res.attempts)
      assert.equal(3, #res.connections)
      assert.equal(res.connections[1], res.connections[2])
      assert.equal(res.connections[2], res.connections[3])
    end)

    it("times out each attempt and gives APITimeoutError after the retries", function()
      local id = support.id()
      local res = call(support.base("slow/3000/id=" .. id), { timeout = 0.5, max_retries = 1 })
      assert.is_false(res.ok)
      assert.equal("APITimeoutError", res.err.type, res.err.text)
      assert.equal(2, res.err.attempts)
      assert.equal(2, support.hits(id))
    end)

    it("gives APIConnectionError for a reply cut in the middle of the body", function()
      local id = support.id()
      local res = call(support.base("cut/100/id=" .. id), { max_retries = 1 })
      assert.is_false(res.ok)
      assert.equal("APIConnectionError", res.err.type, res.err.text)
      assert.equal(2, res.err.attempts)
      assert.equal(2, support.hits(id))
      assert.matches("closed", res.err.message)
    end)

    it("does not retry a 401", function()
      local id = support.id()
      local res = call(support.base("status/401/id=" .. id))
      assert.is_false(res.ok)
      assert.equal("AuthenticationError", res.err.type, res.err.text)
      assert.equal(401, res.err.status)
      assert.equal(2004, res.err.code)
      assert.equal(1, res.err.attempts)
      assert.equal(1, support.hits(id))
    end)

    it("stores a POST that timed out and was retried exactly once", function()
      local id, ns = support.id(), "spec-cosocket-" .. support.id()
      local res = get("/send?id=" .. enc(id) .. "&ns=" .. enc(ns))
      assert.is_true(res.ok, res.err and res.err.text)
      assert.equal(2, res.attempts)
      assert.is_string(res.key)
      assert.equal(2, support.hits(id))
      assert.equal(1, res.stored)
      assert.equal(2, res.total)                  -- the chat's first message and ours
    end)
  end)

  it("says to add `resolver` for a host name in a conf without one", function()
    local base = "http://localhost:" .. SIM_PORT .. "/api/partner"
    local res = call(base)
    assert.is_false(res.ok)
    assert.equal("APIConnectionError", res.err.type, res.err.text)
    assert.matches("add `resolver", res.err.message, 1, true)
    assert.equal(1, res.err.attempts)
    -- The same host name where the location has a resolver: the call works.
    res = call_resolved(base)
    assert.is_true(res.ok, res.err and res.err.text)
    assert.equal(2, res.count)
  end)

  it("holds no more descriptors after 2,000 calls than before", function()
    local res = get("/fds?n=2000")
    assert.equal(2000, res.ok)
    assert.equal(1, res.distinct)                 -- one pooled connection carried them all
    assert.is_true(res.after <= res.before + 2,
                   string.format("descriptors: %d before, %d after", res.before, res.after))
    -- The worker's Lua heap after a full collection (about 50 KiB more here).
    assert.is_true(res.kb_growth < 1024, string.format("Lua heap grew by %.0f KiB", res.kb_growth))
  end)

  it("refuses a call in init_worker_by_lua, and a client made there works in a handler", function()
    local state = get("/state")
    assert.matches("cannot call the Linq API in nginx's 'init_worker' phase", state.init_worker)
    assert.matches("content_by_lua%*", state.init_worker)
    local res = get("/from_init_worker")
    assert.is_true(res.ok, res.err and res.err.text)
    assert.equal(2, res.count)
    assert.matches("nginx cosockets", res.client)
  end)

  it("gives a handler nil, err through linq.safe, not a 500", function()
    local id = support.id()
    local res = get("/safe?base=" .. enc(support.base("status/404/id=" .. id)))
    assert.is_false(res.ok)
    assert.is_true(res.is_error)
    assert.equal("NotFoundError", res.type)
    assert.equal(404, res.status)
    assert.equal(4004, res.code)
    assert.equal(1, res.attempts)
    assert.equal(0, res.waited)
    assert.matches("^linq: NotFoundError 404 %(code 4004%)", res.text)
    assert.matches("^linq%.safe%.Client %(.*, nginx cosockets%)$", res.client)
    assert.equal("NotFoundError", res.page)         -- the failed page, as false, err
    assert.matches("bad argument #1 to 'get_chat' %(chat_id must not be empty%)", res.misuse)
    assert.equal(2, support.hits(id))               -- the call and the page; misuse sent nothing
    res = get("/safe?base=" .. enc(support.base()))
    assert.is_true(res.ok)
    assert.equal(2, res.count)
    assert.equal("table", res.page)
    -- A safe client made in init_worker_by_lua, called from the handler.
    res = get("/safe?worker=1&base=" .. enc(support.base("status/404")))
    assert.is_true(res.ok)
    assert.equal(2, res.count)
  end)

  it("runs client:all as light threads, results in the order given", function()
    local res = get("/all?n=9&slow=3&concurrency=4")
    assert.equal(9, #res.results)
    for i = 1, 8 do
      assert.is_true(res.results[i].ok, res.results[i].err and res.results[i].err.text)
      assert.equal(2, res.results[i].count)
      assert.equal(200, res.results[i].status)
    end
    assert.is_false(res.results[9].ok)
    assert.equal("NotFoundError", res.results[9].err.type)
    assert.matches("bad argument #1 to 'all' %(calls%[1%], get_chat: ", res.misuse)
  end)

  it("yields each_result as the calls end", function()
    local res = get("/all?n=3&slow=2&each=1")  -- call 1 slow, 2 fast, 3 a 404
    assert.equal(3, #res.order)
    assert.equal(1, res.order[3])               -- the slow one ends last
    assert.is_true(res.results[1].ok)
    assert.equal("NotFoundError", res.results[3].err.type)
  end)

  it("finishes the calls in flight across a reload", function()
    local id, tag = support.id(), support.id()
    local old = get("/pid").pid
    local dir = support.read_command("mktemp -d")
    local url = string.format("%s/one?wait=1&key=%s&mode=%s", app.url, enc(tag), enc("slow/1500/id=" .. id))
    local script = string.format(
      "for i in $(seq 50); do curl -s --noproxy '*' -m 30 -o %s/body.$i -w '%%{http_code}' '%s' " ..
      ">%s/code.$i 2>/dev/null & done; wait", dir, url, dir)
    local f = assert(io.open(dir .. "/fire.sh", "wb"))
    f:write(script, "\n")
    f:close()
    -- In the background, without the sanitizer runtime of `make asan` (see support.lua).
    local runner = assert(io.popen("env -u LD_PRELOAD -u ASAN_OPTIONS sh " .. dir .. "/fire.sh"))
    -- The 50 requests wait in their handlers until all have come (starting 50 curl
    -- processes takes a while), then call the simulator at once.
    local arrived = until_true(function()
      local n = get("/state")["arrived_" .. tag]
      return n and n >= 50 and n or nil
    end)
    assert.equal(50, arrived)
    get("/go?key=" .. enc(tag))
    local hits = until_true(function()
      local n = support.hits(id)
      return n >= 50 and n or nil
    end) or support.hits(id)
    assert.equal(50, hits)
    assert.is_true(nginx_app.reload(app))
    local ended_early = get("/state")["one_" .. tag]
    runner:read("*a")
    runner:close()
    local ok = 0
    for i = 1, 50 do
      local code = nginx_app.read(dir .. "/code." .. i)
      local body = nginx_app.read(dir .. "/body." .. i)
      local decoded = code == "200" and cjson.decode(body)
      if decoded and decoded.ok and decoded.count == 2 and decoded.pid == old then
        ok = ok + 1
      else
        print("call " .. i .. ": " .. code .. " " .. body)
      end
    end
    support.execute("rm -rf " .. dir)
    assert.is_nil(ended_early, "the calls ended before the reload")
    assert.equal(50, ok)
    assert.equal(50, get("/state")["one_" .. tag])
    -- The reload did happen: a new worker answers now.
    local new = until_true(function()
      local pid = get("/pid").pid
      return pid ~= old and pid or nil
    end, 100)
    assert.is_number(new)
    assert.is_nil(app.error_log():find("exited on signal", 1, true))
  end)
end)
