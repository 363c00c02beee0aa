-- Hostile callers and servers (issue 10): each case here crashed, leaked the key
-- or misbehaved before its fix.  Cases that could crash run in a child
-- interpreter, so a crash fails the spec instead of ending the run.
local linq = require("linq")
local support = require("support")

local function child(code)
  local out, err, ok = support.run_lua({ LINQ_SIM_URL = support.url, LINQ_SIM_KEY = support.key },
    "package.path = './lua/?.lua;./spec/?.lua;' .. package.path\n" .. code)
  assert(ok, "the child interpreter failed: " .. err .. out)
  return out
end

describe("options", function()
  it("are read once: finalizers that change the caller's headers mid-call cannot crash it", function()
    local out = child([[
      local linq = require("linq")
      local base = os.getenv("LINQ_SIM_URL") .. "/echo"
      local h = {}
      for i = 1, 40 do h["X-H" .. i] = "v" .. i end
      local clean, done = 0, 0
      for round = 1, 200 do
        -- garbage whose finalizers turn every header value into a table
        for _ = 1, 20 do
          setmetatable({}, { __gc = function() for k in pairs(h) do h[k] = {} end end })
        end
        collectgarbage("step", 1)
        local ok, c = pcall(linq.new, { api_key = "k", base_url = base, headers = h })
        if ok then
          local ok2, res = pcall(c.phone_numbers, c, { headers = h })
          if ok2 then done = done + 1 elseif type(res) == "string" then clean = clean + 1 end
          c:close()
        elseif type(c) == "string" then
          clean = clean + 1
        end
        for i = 1, 40 do h["X-H" .. i] = "v" .. i end
      end
      io.write(clean + done)
    ]])
    assert.equal("200", out)
  end)

  it("given by __index are honoured, copied before the collector can free them", function()
    local out = child([[
      local linq = require("linq")
      collectgarbage("setpause", 0)  -- collect at every chance
      local base = os.getenv("LINQ_SIM_URL")
      local key = os.getenv("LINQ_SIM_KEY")
      local opts = setmetatable({}, { __index = function(_, k)
        -- a fresh string each time, referenced by nothing once returned
        if k == "api_key" then return key:sub(1, 3) .. key:sub(4) end
        if k == "base_url" then return base .. "/" .. "echo" end
      end })
      local c = linq.new(opts)
      for _ = 1, 50 do collectgarbage() end
      local res = c:phone_numbers()
      io.write(res.headers.authorization == "Bearer " .. key and "same" or "different")
    ]])
    assert.equal("same", out)
  end)

  it("refuse an option name with a NUL after a known name", function()
    assert.matches("unknown option 'timeout' %(it contains a NUL%)",
                   support.raises(linq.new, { api_key = "k", ["timeout\0x"] = 1 }))
  end)
end)

describe("a client closed by __close", function()
  it("waits for its own call to end, which completes as if nothing happened", function()
    if _VERSION ~= "Lua 5.4" then pending("to-be-closed variables need Lua 5.4") return end
    local out = child([[
      local linq = require("linq")
      local key = os.getenv("LINQ_SIM_KEY")
      local during, good = 0, 0
      collectgarbage("generational", 1, 10)  -- a minor collection at almost every allocation
      for _ = 1, 50 do
        local c = linq.new{ api_key = key, base_url = os.getenv("LINQ_SIM_URL") .. "/echo",
                            max_retries = 0 }
        local co = coroutine.create(function()
          local scoped <close> = c  -- luacheck: ignore
          coroutine.yield()
        end)
        coroutine.resume(co)
        local in_call = false
        -- garbage whose finalizer closes that scope: run by a collection in the call
        do setmetatable({}, { __gc = function()
          if in_call then during = during + 1 end
          coroutine.close(co)
        end }) end
        in_call = true
        local ok, res = pcall(c.request, c, "GET", "/v3/x")
        in_call = false
        if ok and res.headers.authorization == "Bearer " .. key
           and tostring(c):find("closed", 1, true) then
          good = good + 1  -- answered, and closed once the call was over
        end
        coroutine.close(co)
      end
      io.write(during > 0 and good == during and "ok" or ("during " .. during .. ", good " .. good))
    ]])
    assert.equal("ok", out)
  end)
end)

describe("the key, quoted back by a server", function()
  local function reflect(key, style)
    local c = linq.new{ api_key = key, base_url = support.base("reflect/500/10/" .. style),
                        max_retries = 0 }
    local e = support.raises(c.phone_numbers, c)
    c:close()
    local texts = { tostring(e), e.message or "", e.body or "" }
    for name, value in pairs(e.headers or {}) do
      texts[#texts + 1] = name
      texts[#texts + 1] = value
    end
    return table.concat(texts, "\n")
  end

  local function forms(key)
    local lower = key:lower()
    local json = key:gsub("/", "\\/")
    local percent = key:gsub("[^%w%-%._~]", function(ch) return string.format("%%%02X", ch:byte()) end)
    return { key, lower, json, percent }
  end

  for _, case in ipairs{
    { "Sim-Test-Caps", "dots", "as a header name, lower-cased" },
    { "Ab/Cd+Ef=gh", "json", "JSON-escaped" },
    { "Ab/Cd+Ef=gh", "percent", "percent-encoded" },
    { "AbCdEfGHij", "lower", "lower-cased" },
  } do
    it("is redacted " .. case[3], function()
      local text = reflect(case[1], case[2])
      for _, form in ipairs(forms(case[1])) do
        assert.is_nil(text:find(form, 1, true), "the key appears as " .. form .. " in: " .. text)
      end
      assert.matches("%[redacted%]", text)
    end)
  end
end)

describe("requests", function()
  local c = support.client{ mode = "echo" }

  it("refuse a body on GET instead of changing the method", function()
    assert.matches("a GET request cannot have a body",
                   support.raises(c.request, c, "GET", "/v3/x", { body = { a = 1 } }))
  end)

  it("refuse '.' and '..' path segments, escaped or not", function()
    for _, path in ipairs{ "/v3/phone_numbers/../../x", "/v3/./x", "/v3/%2e%2E/x", "/v3/.%2e",
                           "/v3/x/.." } do
      assert.matches("path has a '%.' or '%.%.' segment",
                     support.raises(c.request, c, "GET", path), path)
    end
    assert.equal("/echo/v3/a..b/.x", c:request("GET", "/v3/a..b/.x").path)
  end)

  it("refuse a query value that is a table with named keys", function()
    assert.matches("query 'a' must be a string, number, boolean or a list of them, got a table",
                   support.raises(c.request, c, "GET", "/v3/x", { query = { a = { b = 1 } } }))
  end)

  it("refuse header values with any control character but tab", function()
    assert.matches("contains CR, LF, NUL or another control character",
                   support.raises(c.request, c, "GET", "/v3/x", { headers = { ["X-A"] = "a\27b" } }))
    assert.equal("a\tb", c:request("GET", "/v3/x", { headers = { ["X-A"] = "a\tb" } }).headers["x-a"])
  end)

  it("refuse a URL longer than libcurl takes, before any traffic", function()
    assert.matches("longer than libcurl's 8 MB limit",
                   support.raises(c.request, c, "GET", "/v3/x", { query = { q = ("x"):rep(8100000) } }))
  end)
end)

describe("replies", function()
  it("with a lone surrogate escape decode, the half replaced by U+FFFD", function()
    local c = support.client{ mode = "body/200/lone-surrogate" }
    local res = c:phone_numbers()
    assert.equal("cut emoji: \239\191\189 end", res.message)
    assert.equal("\240\159\152\128", res.pair)
    c:close()
  end)

  it("that are JSON but not an object or array are a validation error", function()
    local c = support.client{ mode = "body/200/scalar" }
    local e = support.raises(c.phone_numbers, c)
    assert.equal("APIResponseValidationError", e.type)
    assert.matches("not an object or an array", e.message)
    c:close()
  end)

  it("with a number too large for a double are a validation error, not infinity", function()
    local c = support.client{ mode = "body/200/overflow" }
    local e = support.raises(c.phone_numbers, c)
    assert.equal("APIResponseValidationError", e.type)
    assert.matches("too large for a double", e.message)
    c:close()
    c = support.client{ mode = "body/200/overflow-text" }
    assert.equal("1e400", c:phone_numbers().note)  -- the same text in a string is fine
    c:close()
  end)

  it("cap a huge envelope message, so tostring stays short", function()
    local c = support.client{ mode = "body/500/huge-envelope", max_retries = 0 }
    local e = support.raises(c.phone_numbers, c)
    assert.is_true(#e.message <= 1003)
    assert.is_true(#tostring(e) < 1200)
    c:close()
  end)

  it("read Retry-After as seconds only, never as hex", function()
    local c = support.client{ mode = "status/503/retry-after=0x10", max_retries = 0 }
    local e = support.raises(c.phone_numbers, c)
    assert.is_nil(e.retry_after)
    c:close()
  end)
end)

describe("a client", function()
  it("trusts exactly its ca_file, and checks it is a PEM bundle at linq.new", function()
    assert.matches("option 'ca_file': '/' is not a PEM bundle",
                   support.raises(linq.new, { api_key = "k", ca_file = "/" }))
    local empty = os.tmpname()
    assert.matches("is not a PEM bundle", support.raises(linq.new, { api_key = "k", ca_file = empty }))
    os.remove(empty)
    assert.truthy(linq.new{ api_key = "k", ca_file = os.getenv("LINQ_SIM_CA") })
  end)

  it("made by a finalizer at interpreter exit still works (the library stays loaded)", function()
    local out = child([[
      local linq = require("linq")
      local url = os.getenv("LINQ_SIM_URL") .. "/api/partner"
      local key = os.getenv("LINQ_SIM_KEY")
      local function at_exit()
        local c = linq.new{ api_key = key, base_url = url }
        local ok, res = pcall(c.phone_numbers, c)
        io.write(ok and #res.phone_numbers or tostring(res))
      end
      if newproxy then  -- 5.1 and LuaJIT: __gc only on userdata
        local p = newproxy(true)
        getmetatable(p).__gc = at_exit
        _G.keep = p
      else
        _G.keep = setmetatable({}, { __gc = at_exit })
      end
    ]])
    assert.equal("2", out)
  end)
end)

describe("chunked trailers", function()
  it("are not taken for headers of the reply", function()
    local c = support.client{ mode = "trailer" }
    local res, meta = c:phone_numbers()
    assert.same({}, res.phone_numbers)
    assert.is_nil(meta.headers["x-trailer"])
    c:close()
  end)
end)

describe("a POST on a kept-alive connection the server drops without replying", function()
  -- hangup-reused: the server acts on a request that came on a reused connection,
  -- then closes it without a reply; libcurl would send it again on a new connection.
  local function setup(max_retries)
    local id, ns = support.id(), "spec-" .. support.id()
    local c = support.client{ mode = "hangup-reused/id=" .. id .. "/ns=" .. ns,
                              max_retries = max_retries }
    c:list_chats()  -- the first request of the connection is answered
    return c, id, ns
  end
  local function subscriptions(ns)
    local c = support.client{ mode = "ns/" .. ns }
    local res = c:list_webhook_subscriptions()
    c:close()
    return #res.subscriptions
  end
  local params = { target_url = "https://x.test/h", subscribed_events = { "message.sent" } }

  it("is sent once when no retry is allowed, and the call says it failed", function()
    local c, id, ns = setup(0)
    local e = support.raises(c.create_webhook_subscription, c, params)
    assert.equal("APIConnectionError", e.type)
    assert.equal(1, e.attempts)
    assert.matches("reused connection", e.message)
    assert.equal(2, support.hits(id))          -- the GET and one POST, not two
    assert.equal(1, subscriptions(ns))
    c:close()
  end)

  it("is sent again only as a counted attempt", function()
    local c, id, ns = setup(1)
    -- the server took the first send; the second, a counted retry, meets it
    local e = support.raises(c.create_webhook_subscription, c, params)
    assert.equal("ConflictError", e.type)
    assert.equal(2, e.attempts)
    assert.equal(3, support.hits(id))
    assert.equal(1, subscriptions(ns))
    -- a send with an idempotency key is safe to retry: the server answers the first
    local chat = c:create_chat{ from = "+12025551234", to = { "+12025550100" },
                                message = { parts = { { type = "text", value = "hi" } } } }
    assert.is_string(chat.chat.id)
    c:close()
  end)

  it("is not a concern for a GET, which libcurl may send again unseen", function()
    local c, id = setup(0)
    local res, meta = c:list_chats()
    assert.same({}, res.chats)
    assert.equal(1, meta.attempts)
    assert.equal(3, support.hits(id))
    c:close()
  end)
end)

describe("response headers", function()
  it("over libcurl's limits are a validation error, not a retried connection failure", function()
    local function fails(mode)
      return support.raises(function() return support.client{ mode = mode }:phone_numbers() end)
    end
    local e = fails("bigheader/102500")
    assert.equal("APIResponseValidationError", e.type)
    assert.matches("line is longer than 100 KiB", e.message)
    assert.equal(1, e.attempts)
    e = fails("headers/40/10000")
    assert.equal("APIResponseValidationError", e.type)
    assert.matches("larger than 256 KiB", e.message)
    local res = support.client{ mode = "headers/24/10000" }:phone_numbers()
    assert.equal(2, #res.phone_numbers)
  end)
end)

describe("running out of file descriptors", function()
  it("is reported as EMFILE, not as a server that refused the connection", function()
    local script = os.tmpname()
    local f = assert(io.open(script, "wb"))
    f:write(string.format([[
      package.path = './lua/?.lua;' .. package.path
      local linq = require("linq")
      local c = linq.new{ api_key = %q, base_url = %q, max_retries = 0 }
      local files = {}
      for _ = 1, 1000 do
        local file = io.open("/dev/null")
        if not file then break end
        files[#files + 1] = file
      end
      local ok, e = pcall(c.phone_numbers, c)
      for _, file in ipairs(files) do file:close() end
      io.write(ok and "ok" or e.type .. ": " .. e.message, " / ", tostring(c:phone_numbers() ~= nil))
    ]], support.key, support.base()))
    f:close()
    local out = support.read_command("sh -c 'ulimit -n 64; " .. support.lua .. " " .. script ..
                                     " 2>&1'")
    os.remove(script)
    assert.matches("APIConnectionError: no socket could be opened: the process has too many " ..
                   "open files (EMFILE)", out, 1, true)
    assert.matches("true$", out)
  end)
end)

describe("Ctrl-C during a wait between attempts", function()
  it("ends the call instead of sleeping on", function()
    local id = support.id()
    local script = os.tmpname()
    local f = assert(io.open(script, "wb"))
    f:write(string.format([[
      package.path = './lua/?.lua;' .. package.path
      local linq = require("linq")
      local c = linq.new{ api_key = %q, base_url = %q, max_retries = 3, max_retry_delay = 60 }
      local ok, e = pcall(c.phone_numbers, c)
      -- the interpreter's own handler may act first ("interrupted!"), or the call's error
      -- says it was cut short: either way, it ended now
      io.stderr:write(type(e) == "table" and ("interrupted " .. tostring(e.interrupted))
                      or tostring(e), "\n")
    ]], support.key, support.base("status/503/retry-after=30/id=" .. id)))
    f:close()
    -- the child waits 30 s before its second attempt; SIGINT comes once the first arrived
    local shell = os.tmpname()
    f = assert(io.open(shell, "wb"))
    f:write(string.format([[
%s %s 2>&1 &
pid=$!
for i in $(seq 100); do
  [ "$(curl -s --noproxy '*' %s)" = '{"hits":1}' ] && break
  sleep 0.1
done
sleep 0.3
kill -INT $pid
wait $pid
]], support.lua, script, support.url .. "/hits/" .. id))
    f:close()
    local out = support.read_command("sh " .. shell)
    os.remove(script)
    os.remove(shell)
    assert.matches("interrupted", out)
    assert.equal(1, support.hits(id))
  end)
end)
