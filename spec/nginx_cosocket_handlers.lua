-- The handlers of spec/nginx/cosocket.conf, the application nginx of
-- spec/nginx_cosocket_spec.lua: each answers JSON that the spec checks.  Loaded by
-- nginx (LuaJIT), never by busted.
-- luacheck: globals ngx
local linq = require("linq")
local linq_safe = require("linq.safe")
local cjson = require("cjson")

local M = {}

local sim = os.getenv("LINQ_SIM_URL")
local key = os.getenv("LINQ_SIM_KEY")

local function reply(t)
  ngx.say(cjson.encode(t))
end

local function args()
  return ngx.req.get_uri_args()
end

-- An error as plain fields (a linq error is a table with a metatable; anything
-- else is a string).
local function describe(e)
  if linq.is_error(e) then
    return { type = e.type, message = e.message, attempts = e.attempts, status = e.status,
             code = e.code, curl_code = e.curl_code, text = tostring(e) }
  end
  return { type = "lua", message = tostring(e), text = tostring(e) }
end

local function state() return ngx.shared.state end

-- Light threads, each calling f(i); returns how many returned true and the
-- distinct failure messages (at most 5, with their counts).
local function run_threads(n, f)
  local threads = {}
  for i = 1, n do threads[i] = ngx.thread.spawn(f, i) end
  local ok, failures, distinct = 0, {}, 0
  for i = 1, n do
    local alive, good, why = ngx.thread.wait(threads[i])
    if alive and good then
      ok = ok + 1
    else
      local msg = tostring(alive and why or good)
      if failures[msg] then
        failures[msg] = failures[msg] + 1
      elseif distinct < 5 then
        failures[msg] = 1
        distinct = distinct + 1
      end
    end
  end
  return ok, failures
end

local function list_call(c)
  return function()
    local good, res = pcall(c.phone_numbers, c)
    if not good then return false, describe(res).text end
    if #res.phone_numbers ~= 2 then return false, "got " .. #res.phone_numbers .. " numbers" end
    return true
  end
end

-- GET /many?n=N&mode=M: N light threads of this request, one client, each one call.
function M.many()
  local a = args()
  local c = linq.new{ api_key = key, base_url = sim .. "/" .. a.mode }
  local ok, failures = run_threads(tonumber(a.n), list_call(c))
  reply{ ok = ok, failures = failures }
end

-- GET /start?n=N&mode=M&key=K: N calls in light threads of a timer; the request
-- answers at once.  The timer sets bg_ok_K and then bg_done_K when all ended.
function M.start()
  local a = args()
  local n, tag = tonumber(a.n), a.key
  local c = linq.new{ api_key = key, base_url = sim .. "/" .. a.mode }
  local okt, err = ngx.timer.at(0, function()
    local ok, failures = run_threads(n, list_call(c))
    state():set("bg_failures_" .. tag, cjson.encode(failures))
    state():set("bg_ok_" .. tag, ok)
    state():set("bg_done_" .. tag, true)
  end)
  reply{ started = okt and true or false, err = err }
end

-- GET /one?mode=M&key=K[&wait=1]: one call; counts the ends in one_K.  With wait,
-- counts the arrival in arrived_K first and waits for go_K (set by /go?key=K).
function M.one()
  local a = args()
  if a.wait then
    state():incr("arrived_" .. a.key, 1, 0)
    while not state():get("go_" .. a.key) do ngx.sleep(0.01) end
  end
  local c = linq.new{ api_key = key, base_url = sim .. "/" .. a.mode }
  local good, res = pcall(c.phone_numbers, c)
  state():incr("one_" .. a.key, 1, 0)
  reply{ ok = good, count = good and #res.phone_numbers or nil,
         err = not good and describe(res) or nil, pid = ngx.worker.pid() }
end

function M.go()
  state():set("go_" .. ngx.var.arg_key, true)
  reply{ go = true }
end

function M.pid()
  reply{ pid = ngx.worker.pid() }
end

function M.state()
  local out = {}
  for _, k in ipairs(state():get_keys(0)) do out[k] = state():get(k) end
  reply(out)
end

-- GET /call?base=URL[&timeout=S][&max_retries=N][&max_retry_delay=S]: one
-- phone_numbers call with these options.
function M.call()
  local a = args()
  local opts = { api_key = key, base_url = a.base, max_retry_delay = tonumber(a.max_retry_delay or 0) }
  opts.timeout = tonumber(a.timeout)
  opts.max_retries = tonumber(a.max_retries)
  local made, c = pcall(linq.new, opts)
  if not made then return reply{ ok = false, err = describe(c) } end
  local good, res, meta = pcall(c.phone_numbers, c)
  if good then
    return reply{ ok = true, count = #res.phone_numbers, attempts = meta.attempts, status = meta.status }
  end
  reply{ ok = false, err = describe(res) }
end

-- GET /repeat_resolved?base=URL&n=N: the same call N times in a row; how many
-- times each outcome type came, one error of each type, the distinct messages
-- (at most 10) and the most attempts any call made.
function M.repeat_call()
  local a = args()
  local c = linq.new{ api_key = key, base_url = a.base, max_retry_delay = 0 }
  local types, samples, messages, distinct, attempts = {}, {}, {}, 0, 0
  for _ = 1, tonumber(a.n) do
    local good, res, meta = pcall(c.phone_numbers, c)
    local e = good and { type = "success", attempts = meta.attempts } or describe(res)
    types[e.type] = (types[e.type] or 0) + 1
    samples[e.type] = samples[e.type] or e
    if e.attempts and e.attempts > attempts then attempts = e.attempts end
    if e.message and (messages[e.message] or distinct < 10) then
      if not messages[e.message] then distinct = distinct + 1 end
      messages[e.message] = (messages[e.message] or 0) + 1
    end
  end
  reply{ types = types, samples = samples, messages = messages, attempts = attempts }
end

-- GET /deep: a reply nested 150 deep, from this nginx's own /nested location.
function M.nested_body()
  local depth = tonumber(ngx.var.arg_depth or 150)
  ngx.print('{"phone_numbers":[],"deep":' .. string.rep("[", depth) .. '"bottom"' ..
            string.rep("]", depth) .. "}")
end

function M.deep()
  local c = linq.new{ api_key = key, max_retries = 0,
                      base_url = "http://127.0.0.1:" .. ngx.var.server_port .. "/nested" }
  local good, res = pcall(c.phone_numbers, c)
  if not good then return reply{ ok = false, err = describe(res) } end
  local depth, t = 0, res.deep
  while type(t) == "table" do
    if #t ~= 1 then break end
    depth = depth + 1
    t = t[1]
  end
  -- The simulator's body nested 10,000 deep: an error, not a crash of the worker.
  local s = linq.new{ api_key = key, max_retries = 0, base_url = sim .. "/body/200/nested" }
  local good2, e = pcall(s.phone_numbers, s)
  reply{ ok = true, depth = depth, bottom = t, numbers = #res.phone_numbers,
         very_deep = good2 and "no error" or describe(e) }
end

-- This nginx's own answer, with nginx's connection serial number, for keepalive.
function M.own()
  reply{ phone_numbers = {}, connection = tonumber(ngx.var.connection) }
end

-- The same, then the connection held open for a second after the reply (which
-- said Connection: close): a client that pooled it would send its next request
-- into a connection that is about to close.
function M.own_close_late()
  M.own()
  ngx.eof()
  ngx.sleep(1)
end

-- /own-flaky/<K>/v3/...: 503 (with the API's envelope) to the first two requests
-- for K, then a list; each request's connection number is kept in the state.
function M.own_flaky()
  local k = ngx.var.uri:match("^/own%-flaky/([^/]+)/")
  local n = state():incr("flaky_" .. k, 1, 0)
  state():set("flaky_conn_" .. k .. "_" .. n, tonumber(ngx.var.connection))
  if n <= 2 then
    ngx.status = 503
    return reply{ error = { status = 503, code = 3009, message = "Service unavailable" }, success = false }
  end
  reply{ phone_numbers = {}, connection = tonumber(ngx.var.connection) }
end

-- GET /retry_connections?k=K: one call through /own-flaky/K; the connection of
-- each attempt.
function M.retry_connections()
  local k = ngx.var.arg_k
  local c = linq.new{ api_key = key, max_retry_delay = 0,
                      base_url = "http://127.0.0.1:" .. ngx.var.server_port .. "/own-flaky/" .. k }
  local good, res, meta = pcall(c.phone_numbers, c)
  if not good then return reply{ ok = false, err = describe(res) } end
  local connections = {}
  for i = 1, meta.attempts do connections[i] = state():get("flaky_conn_" .. k .. "_" .. i) end
  reply{ ok = true, attempts = meta.attempts, connections = connections }
end

-- GET /keepalive: sequential calls from one handler.
function M.keepalive()
  local out = {}
  local echo = linq.new{ api_key = key, base_url = sim .. "/echo", max_retries = 0 }
  local r1 = echo:request("GET", "/v3/phone_numbers")
  local r2 = echo:request("GET", "/v3/phone_numbers")
  out.echo = { r1.connection, r2.connection }
  local own_base = "http://127.0.0.1:" .. ngx.var.server_port
  local own = linq.new{ api_key = key, base_url = own_base .. "/own", max_retries = 0 }
  local closing = linq.new{ api_key = key, base_url = own_base .. "/own-close", max_retries = 0 }
  local closing_late = linq.new{ api_key = key, base_url = own_base .. "/own-close-late", max_retries = 0 }
  local seq = {}
  local function step(name, c)
    local good, res, meta = pcall(c.phone_numbers, c)
    seq[#seq + 1] = { name = name, ok = good, connection = good and res.connection or nil,
                      attempts = good and meta.attempts or nil,
                      closed = good and meta.headers.connection or nil,
                      err = not good and describe(res) or nil }
  end
  step("own1", own)
  step("own2", own)
  step("close", closing)   -- answered with Connection: close
  step("own3", own)
  step("own4", own)
  step("close_late", closing_late)   -- Connection: close, but the server closes 1 s later
  step("own5", own)
  out.own = seq
  reply(out)
end

-- GET /send?ns=NS&id=ID: a chat in namespace NS, then a message sent through
-- lag/1/1500 with a 0.5 s timeout (the first attempt times out after the server
-- stored the message; the retry carries the same idempotency key).
function M.send()
  local a = args()
  local text = "cosocket-" .. a.id
  local c = linq.new{ api_key = key, base_url = sim .. "/ns/" .. a.ns, max_retry_delay = 0 }
  local created = c:create_chat{ from = "+12025551234", to = { "+12025550100" },
                                 message = { parts = { { type = "text", value = "first" } } } }
  local chat_id = created.chat.id
  local lagging = linq.new{ api_key = key, timeout = 0.5, max_retry_delay = 0,
                            base_url = sim .. "/lag/1/1500/id=" .. a.id .. "/ns=" .. a.ns }
  local good, sent, meta = pcall(lagging.send_message, lagging, chat_id,
                                 { message = { parts = { { type = "text", value = text } } } })
  local stored, total = 0, 0
  for m in c:each("list_chat_messages", chat_id, { limit = 100 }) do
    total = total + 1
    for _, part in ipairs(m.parts or {}) do
      if part.value == text then stored = stored + 1 end
    end
  end
  reply{ ok = good, err = not good and describe(sent) or nil, attempts = good and meta.attempts or nil,
         key = good and meta.idempotency_key or nil, stored = stored, total = total }
end

-- The worker's open descriptors, from /proc.
local function descriptors()
  local p = assert(io.popen("ls -1 /proc/" .. ngx.worker.pid() .. "/fd"))
  local n = 0
  for _ in p:lines() do n = n + 1 end
  p:close()
  return n
end

-- GET /fds?n=N: N sequential calls to the echo from one handler, with the
-- descriptors counted before and after, and the connections they used.
function M.fds()
  local n = tonumber(ngx.var.arg_n)
  local c = linq.new{ api_key = key, base_url = sim .. "/echo", max_retries = 0 }
  c:request("GET", "/v3/phone_numbers")   -- the pooled connection exists before the count
  collectgarbage("collect")
  local before, kb_before = descriptors(), collectgarbage("count")
  local connections, distinct, ok = {}, 0, 0
  for _ = 1, n do
    local good, res = pcall(c.request, c, "GET", "/v3/phone_numbers")
    if good then
      ok = ok + 1
      if not connections[res.connection] then
        connections[res.connection] = true
        distinct = distinct + 1
      end
    end
  end
  local after = descriptors()
  collectgarbage("collect")
  reply{ ok = ok, before = before, after = after, distinct = distinct,
         kb_growth = collectgarbage("count") - kb_before }
end

-- GET /safe?base=URL: calls through require("linq.safe") with no pcall, as a
-- handler would make them: a failure comes back as nil, err (a normal client would
-- raise the error table, which ngx_lua logs as "unknown reason" with a 500), a
-- failed page as false, err, and misuse still raises.  With worker=1, the call goes
-- through the safe client made in init_worker_by_lua instead.
function M.safe()
  local a = args()
  local c = linq_safe.new{ api_key = key, base_url = a.base, max_retries = 0 }
  local res, err = (a.worker and _G.worker_safe or c):phone_numbers()
  local out = { ok = res ~= nil, client = tostring(c) }
  if res then
    out.count = #res.phone_numbers
  else
    out.is_error, out.type, out.status, out.code = linq.is_error(err), err.type, err.status, err.code
    out.attempts, out.waited, out.text = err.attempts, err.waited, tostring(err)
  end
  local page, perr = c:pages("list_chats")()
  out.page = page == false and perr.type or type(page)
  local good, misuse = pcall(c.get_chat, c, "")
  out.misuse = not good and tostring(misuse) or "no error"
  c:close()
  reply(out)
end

-- init_worker_by_lua: a client made there, and a call there (refused).
-- GET /all?n=N&slow=K[&concurrency=C][&each=1]: client:all (or each_result) over
-- N calls on the simulator's root: every K-th slow (400 ms), the others at once,
-- one 404 last; the order results came in and what each was.
function M.all()
  local a = args()
  local c = linq.new{ api_key = key, base_url = sim, max_retry_delay = 0 }
  local n, k = tonumber(a.n), tonumber(a.slow)
  local calls = {}
  for i = 1, n - 1 do
    calls[i] = { "request", "GET", (i % k == 1 and "/slow/400" or "/slow/0") .. "/v3/phone_numbers" }
  end
  calls[n] = { "get_chat", "no-such-chat" }
  local opts = a.concurrency and { concurrency = tonumber(a.concurrency) } or nil
  local out = { results = {}, order = {} }
  if a.each then
    for r, i in c:each_result(calls, opts) do
      out.order[#out.order + 1] = i
      out.results[i] = r
    end
  else
    out.results = c:all(calls, opts)
  end
  for i, r in ipairs(out.results) do
    out.results[i] = r.ok and { ok = true, count = #r.res.phone_numbers, status = r.meta.status,
                                attempts = r.meta.attempts }
                     or { ok = false, err = describe(r.err) }
  end
  local ok, e = pcall(c.all, c, { { "get_chat" } })
  out.misuse = not ok and tostring(e) or "no error"
  reply(out)
end

function M.init_worker()
  _G.worker_safe = linq_safe.new{ api_key = key, base_url = sim .. "/api/partner" }
  _G.worker_client = linq.new{ api_key = key, base_url = sim .. "/api/partner" }
  local good, err = pcall(_G.worker_client.phone_numbers, _G.worker_client)
  ngx.shared.state:set("init_worker", good and "called" or tostring(err))
end

function M.from_init_worker()
  local c = _G.worker_client
  local good, res, meta = pcall(c.phone_numbers, c)
  reply{ ok = good, count = good and #res.phone_numbers or nil, attempts = good and meta.attempts or nil,
         err = not good and describe(res) or nil, client = tostring(c) }
end

return M
