-- client:all and client:each_result (issue 12): many calls at once, each as if it ran
-- alone.  Checked by order, attempt counts and the simulator's hit log, never by
-- elapsed time.  The client's base URL is the simulator's root, so each entry picks
-- its own mode through `request` paths.
local linq = require("linq")
local support = require("support")

local FROM, TO = "+12025551234", "+12025550100"

local function root(opts)
  local o = { api_key = support.key, base_url = support.url, max_retry_delay = 0 }
  for k, v in pairs(opts or {}) do o[k] = v end
  return linq.new(o)
end

local function get(path, opts)
  return { "request", "GET", path, opts }
end

local function text(value)
  return { parts = { { type = "text", value = value } } }
end

describe("client:all", function()
  it("returns results in the order given, whatever order they end in", function()
    local c = root()
    local calls, slow = {}, {}
    for i = 1, 12 do
      local id = support.id()
      -- every third call is slow, the rest answer at once
      local mode = i % 3 == 1 and "slow/300" or "slow/0"
      calls[i] = get("/" .. mode .. "/id=" .. id .. "/v3/phone_numbers")
      slow[i] = id
    end
    calls[13] = get("/status/404/v3/phone_numbers")
    local results = c:all(calls, { concurrency = 4 })
    assert.equal(13, #results)
    for i = 1, 12 do
      assert.is_true(results[i].ok, tostring(results[i].err))
      assert.equal(2, #results[i].res.phone_numbers)
      assert.equal(200, results[i].meta.status)
      assert.equal(1, results[i].meta.attempts)
      assert.equal(1, support.hits(slow[i]))
    end
    assert.is_false(results[13].ok)
    assert.equal("NotFoundError", results[13].err.type)
    assert.is_true(linq.is_error(results[13].err))
    c:close()
  end)

  it("keeps one failure from touching the others: a 401, a timeout and a success", function()
    local c = root()
    local results = c:all({
      get("/status/401/v3/phone_numbers"),
      get("/slow/3000/v3/phone_numbers", { timeout = 0.3, max_retries = 0 }),
      get("/api/partner/v3/phone_numbers"),
    })
    assert.equal("AuthenticationError", results[1].err.type)
    assert.equal(401, results[1].err.status)
    assert.equal("APITimeoutError", results[2].err.type)
    assert.equal(1, results[2].err.attempts)
    assert.is_true(results[3].ok)
    assert.equal(2, #results[3].res.phone_numbers)
    c:close()
  end)

  it("retries a call after the server's Retry-After without holding the others back", function()
    local c = root{ max_retry_delay = 5 }
    local id = support.id()
    local calls = { get("/flaky/1/429/id=" .. id .. "/retry-after=1/v3/phone_numbers") }
    for i = 2, 6 do calls[i] = get("/api/partner/v3/phone_numbers") end
    local order = {}
    local by_index = {}
    for r, i in c:each_result(calls, { concurrency = 2 }) do
      order[#order + 1] = i
      by_index[i] = r
    end
    assert.equal(6, #order)
    assert.equal(1, order[6])               -- the 429 ends last: its wait is its own
    assert.is_true(by_index[1].ok)
    assert.equal(2, by_index[1].meta.attempts)
    assert.equal(1, by_index[1].meta.waited)
    assert.equal(2, support.hits(id))
    for i = 2, 6 do assert.equal(1, by_index[i].meta.attempts) end
    c:close()
  end)

  it("gives each send its own idempotency key, kept across its retries", function()
    local ns = "spec-" .. support.id()
    local c = root()
    local plain = linq.new{ api_key = support.key, base_url = support.url .. "/ns/" .. ns }
    local chat = plain:create_chat{ from = FROM, to = { TO }, message = text("first") }
    local id = support.id()
    -- the first attempt of each is stored but answered after the call gave up
    local lag = linq.new{ api_key = support.key, timeout = 0.5, max_retry_delay = 0,
                          base_url = support.url .. "/lag/2/1500/id=" .. id .. "/ns=" .. ns }
    local results = lag:all({
      { "send_message", chat.chat.id, { message = text("one") } },
      { "send_message", chat.chat.id, { message = text("two") } },
    })
    assert.is_true(results[1].ok, tostring(results[1].err))
    assert.is_true(results[2].ok, tostring(results[2].err))
    assert.equal(2, results[1].meta.attempts)
    assert.equal(2, results[2].meta.attempts)
    assert.are_not.equal(results[1].meta.idempotency_key, results[2].meta.idempotency_key)
    assert.equal(4, support.hits(id))
    local seen = {}
    for m in plain:each("list_chat_messages", chat.chat.id) do
      local v = m.parts[1].value
      seen[v] = (seen[v] or 0) + 1
    end
    assert.equal(1, seen.one)
    assert.equal(1, seen.two)
    c:close()
    plain:close()
    lag:close()
  end)

  it("returns {} for no calls, and raises for misuse before any traffic", function()
    local c = root()
    assert.same({}, c:all({}))
    local id = support.id()
    local ok_entry = get("/slow/0/id=" .. id .. "/v3/phone_numbers")
    local e = support.raises(c.all, c, { ok_entry, { "no_such_operation" } })
    assert.matches("calls%[2%]: 'no_such_operation' is not an operation", e)
    e = support.raises(c.all, c, { ok_entry, { "get_chat" } })
    assert.matches("calls%[2%], get_chat: bad argument #1 to 'get_chat'", e)
    e = support.raises(c.all, c, { ok_entry, "get_chat" })
    assert.matches("calls%[2%] must be a table", e)
    e = support.raises(c.all, c, { ok_entry }, { concurrency = 0 })
    assert.matches("concurrency", e)
    e = support.raises(c.all, c, { ok_entry }, { concurency = 2 })
    assert.matches("unknown option 'concurency'", e)
    e = support.raises(c.all, c, "calls")
    assert.matches("a list of calls expected", e)
    assert.equal(0, support.hits(id))
    c:close()
  end)

  it("runs 1,000 calls 32 at a time and leaves no descriptor behind", function()
    local function descriptors()
      local p = io.popen("ls /proc/" .. support.read_command("echo $PPID") .. "/fd 2>/dev/null | wc -l")
      local n = tonumber(p:read("*a"))
      p:close()
      return n
    end
    local c = root()
    local calls = {}
    for i = 1, 1000 do calls[i] = get("/api/partner/v3/phone_numbers") end
    local before = descriptors()
    local results = c:all(calls, { concurrency = 32 })
    local ok = 0
    for i = 1, 1000 do
      if results[i].ok then ok = ok + 1 end
    end
    assert.equal(1000, ok)
    c:close()
    collectgarbage()
    collectgarbage()
    assert.is_true(descriptors() <= before)
  end)

  it("reuses the connections of one batch in the next", function()
    local c = root()
    local id = support.id()
    -- hangup-reused answers only the first request of a connection: a second batch
    -- that reuses connections has GETs that libcurl sends again on fresh ones
    local calls = { get("/hangup-reused/id=" .. id .. "/v3/phone_numbers") }
    assert.is_true(c:all(calls)[1].ok)
    assert.equal(1, support.hits(id))
    assert.is_true(c:all(calls)[1].ok)
    assert.equal(3, support.hits(id))  -- sent on the kept connection, dropped, sent again
    c:close()
  end)
end)

describe("client:each_result", function()
  it("yields results as they end, with their index", function()
    local c = root()
    local calls = { get("/slow/400/v3/phone_numbers"), get("/api/partner/v3/phone_numbers") }
    local order = {}
    for r, i in c:each_result(calls) do
      assert.is_true(r.ok)
      order[#order + 1] = i
    end
    assert.same({ 2, 1 }, order)
    c:close()
  end)

  it("lets the client close mid-way: the calls under way still end", function()
    local c = root()
    local calls = {}
    for i = 1, 6 do calls[i] = get("/slow/100/v3/phone_numbers") end
    local n = 0
    for r in c:each_result(calls, { concurrency = 6 }) do
      n = n + 1
      assert.is_true(r.ok, tostring(r.err))
      if n == 1 then c:close() end
    end
    assert.equal(6, n)
  end)

  it("can be left early; the next batch of the client still works", function()
    local c = root()
    local calls = {}
    for i = 1, 6 do calls[i] = get("/slow/200/v3/phone_numbers") end
    local next_result = c:each_result(calls, { concurrency = 2 })
    assert.is_true(next_result().ok)  -- one result taken, the rest left running
    collectgarbage()
    local results = c:all({ get("/api/partner/v3/phone_numbers") })
    assert.is_true(results[1].ok)
    c:close()
  end)
end)
