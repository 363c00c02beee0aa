-- require("linq.safe"): clients whose failed calls return nil, err (the same linq
-- error object a normal client raises) while misuse still raises; linq.errors, the
-- names of the error types; and `waited`, which is 0 rather than absent on a
-- failure at the first attempt.
local linq = require("linq")
local safe = require("linq.safe")
local support = require("support")

-- A safe client on the simulator; retries do not wait unless a spec asks them to.
local function client(mode, opts)
  local o = { api_key = support.key, base_url = support.base(mode), max_retry_delay = 0 }
  for k, v in pairs(opts or {}) do o[k] = v end
  return safe.new(o)
end

local function text(value)
  return { parts = { { type = "text", value = value } } }
end

describe("linq.safe", function()
  it("has the module's surface, with its own new", function()
    for k, v in pairs(linq) do
      if k ~= "new" then assert.equal(v, safe[k], k) end
    end
    assert.is_function(safe.new)
    assert.are_not.equal(linq.new, safe.new)
  end)

  it("returns res, meta for a call that succeeds", function()
    local c = client()
    local res, meta = c:phone_numbers()
    assert.equal(2, #res.phone_numbers)
    assert.equal(200, meta.status)
    assert.equal(1, meta.attempts)
    c:close()
  end)

  it("returns nil and the linq error for a call that fails", function()
    local id = support.id()
    local c = client("status/404/id=" .. id, { max_retries = 0 })
    local res, err = c:get_chat("chat-1")
    assert.is_nil(res)
    assert.is_true(linq.is_error(err))
    assert.equal(404, err.status)
    assert.equal("NotFoundError", err.type)
    assert.equal(linq.errors.NotFoundError, err.type)
    assert.equal(4004, err.code)
    assert.equal(1, err.attempts)
    assert.matches("^linq: NotFoundError 404 %(code 4004%)", tostring(err))
    -- request and upload_attachment too
    res, err = c:request("GET", "/v3/chats")
    assert.is_nil(res)
    assert.equal(404, err.status)
    res, err = c:upload_attachment{ data = "hello", filename = "a.txt" }
    assert.is_nil(res)
    assert.equal("NotFoundError", err.type)
    assert.equal(3, support.hits(id))
    c:close()
  end)

  it("returns nil, err when there is no response at all", function()
    local c = safe.new{ api_key = support.key, base_url = "http://127.0.0.1:1", max_retries = 0 }
    local res, err = c:phone_numbers()
    assert.is_nil(res)
    assert.equal("APIConnectionError", err.type)
    assert.is_nil(err.status)
    c:close()
  end)

  it("still raises for misuse, before any traffic", function()
    local id = support.id()
    local c = client("status/404/id=" .. id)
    assert.matches("bad argument #1 to 'get_chat' %(chat_id must not be empty%)",
                   support.raises(function() local r = c:get_chat(""); return r end))
    assert.matches("bad argument #2 to 'send_message' %(params.message is required%)",
                   support.raises(function() local r = c:send_message("chat-1", {}); return r end))
    assert.matches("bad argument #1 to 'request' %(HTTP method must be",
                   support.raises(function() local r = c:request("FETCH", "/v3/chats"); return r end))
    assert.matches("unknown option 'timout'",
                   support.raises(function() local r = c:phone_numbers{ timout = 1 }; return r end))
    assert.matches("bad argument #1 to 'upload_attachment'",
                   support.raises(function() local r = c:upload_attachment{}; return r end))
    assert.matches("bad argument #1 to 'phone_numbers' %(linq.Client expected, got no value%)",
                   support.raises(function() local r = c.phone_numbers(); return r end))
    assert.matches("'get_chats' is not an operation; did you mean 'list_chats'%?",
                   support.raises(function() local r = c:pages("get_chats"); return r end))
    assert.equal(0, support.hits(id))
    c:close()
    -- Raised at the caller's line, as by a normal client, not at a line of linq/safe.lua.
    local e = support.raises(function() local r = safe.new{ apikey = "x" }; return r end)
    assert.matches("bad argument #1 to 'new' %(unknown option 'apikey' %(did you mean 'api_key'%?%)", e)
    assert.matches("safe_spec%.lua:%d+: ", e)
    assert.is_nil(e:find("linq/safe.lua", 1, true))
  end)

  it("makes each method once for the module, not per client or per call", function()
    local a, b = client(), client()
    assert.is_function(a.get_chat)
    assert.equal(a.get_chat, a.get_chat)
    assert.equal(a.get_chat, b.get_chat)
    assert.equal(a.request, b.request)
    assert.equal(a.pages, b.pages)
    assert.is_nil(a.no_such_method)
    assert.is_nil(next(a))   -- nothing stored in the client itself
    a:close()
    b:close()
  end)

  it("makes its clients with whatever linq.new is at the time", function()
    local original, made = linq.new, 0
    linq.new = function(...)
      made = made + 1
      local c = original(...)
      return c
    end
    local ok, c = pcall(client)
    linq.new = original
    assert.is_true(ok, tostring(c))
    assert.equal(1, made)
    assert.equal(2, #c:phone_numbers().phone_numbers)
    c:close()
  end)

  it("closes the client it wraps, idempotently, and then refuses calls", function()
    local c = client()
    assert.matches("^linq%.safe%.Client %(" .. support.base():gsub("%p", "%%%0") .. "%)", tostring(c))
    assert.equal("linq.Client", getmetatable(c))
    c:close()
    c:close()
    assert.matches("^linq%.safe%.Client %(closed%)", tostring(c))
    assert.matches("bad argument #1 to 'phone_numbers' %(the linq client is closed%)",
                   support.raises(function() local r = c:phone_numbers(); return r end))
  end)

  it("never shows the key", function()
    local c = safe.new{ api_key = "sk_live_SECRET_0123456789", base_url = support.base("status/401"),
                        max_retries = 0 }
    local _, err = c:phone_numbers()
    assert.is_nil(tostring(c):find("SECRET", 1, true))
    assert.is_nil(tostring(err):find("SECRET", 1, true))
    c:close()
  end)

  it("closes at the end of a <close> scope on Lua 5.4", function()
    if _VERSION ~= "Lua 5.4" then
      return pending("to-be-closed variables need Lua 5.4")
    end
    local chunk = assert(load([[
      local make = ...
      local kept
      do
        local c <close> = make()
        kept = c
        assert(#c:phone_numbers().phone_numbers == 2)
      end
      return kept
    ]]))
    local kept = chunk(client)
    assert.matches("^linq%.safe%.Client %(closed%)", tostring(kept))
  end)

  it("lets a dropped client be collected", function()
    local weak = setmetatable({}, { __mode = "v" })
    do
      local c = client()
      assert.is_function(c.phone_numbers)   -- a method made and cached
      weak[1] = c
    end
    collectgarbage()
    collectgarbage()
    assert.is_nil(weak[1])
  end)

  describe("paging", function()
    it("pages and iterates as a normal client does", function()
      local ns = support.id()
      local c = client("ns/" .. ns)
      for i = 1, 3 do
        assert.is_table((c:create_chat{ from = "+12025551234", to = { "+1202555010" .. i },
                                        message = text("hi " .. i) }))
      end
      local pages, chats = 0, 0
      for page, meta in c:pages("list_chats", { limit = 2 }) do
        pages = pages + 1
        assert.equal(200, meta.status)
        assert.is_table(page.chats)
      end
      for chat in c:each("list_chats", { limit = 2 }) do
        assert.is_string(chat.id)
        chats = chats + 1
      end
      assert.equal(2, pages)
      assert.equal(3, chats)
      c:close()
    end)

    -- nil, err would end the loop before its body saw the error.
    it("yields a failed page once as false, err, inside the loop, then ends", function()
      local c = client("status/404", { max_retries = 0 })
      local seen = {}
      for page, err in c:pages("list_chats") do
        seen[#seen + 1] = { page, err }
      end
      assert.equal(1, #seen)
      assert.is_false(seen[1][1])
      assert.equal("NotFoundError", seen[1][2].type)
      seen = {}
      for chat, err in c:each("list_chats") do
        seen[#seen + 1] = { chat, err }
      end
      assert.equal(1, #seen)
      assert.is_false(seen[1][1])
      assert.equal(404, seen[1][2].status)
      -- Called by hand: false, err, then nil for good.
      local step = c:pages("list_chats")
      local page, err = step()
      assert.is_false(page)
      assert.is_true(linq.is_error(err))
      assert.is_nil(step())
      assert.is_nil(step())
      c:close()
    end)
  end)

  -- They report each call's failure in their results and raise only for misuse.
  it("passes all and each_result through to the client", function()
    local plain = support.client()
    local c = client("status/404", { max_retries = 0 })
    for _, name in ipairs{ "all", "each_result" } do
      assert.equal(type(plain[name]), type(c[name]), name)
    end
    plain:close()
    if type(c.all) ~= "function" then return c:close() end
    local results = c:all{ { "phone_numbers" }, { "get_chat", "chat-1" } }
    assert.equal(2, #results)
    assert.is_false(results[1].ok)
    assert.equal("NotFoundError", results[2].err.type)
    local n = 0
    for r in c:each_result{ { "phone_numbers" } } do
      n = n + 1
      assert.equal(404, r.err.status)
    end
    assert.equal(1, n)
    assert.matches("bad argument #1 to 'all'", support.raises(function()
      local r = c:all{ { "no_such_operation" } }
      return r
    end))
    c:close()
  end)
end)

describe("linq.errors", function()
  it("names every error type", function()
    assert.equal("RateLimitError", linq.errors.RateLimitError)
    assert.equal("NotFoundError", linq.errors.NotFoundError)
    assert.equal("APITimeoutError", linq.errors.APITimeoutError)
    assert.equal(linq.errors, safe.errors)
    for name, value in pairs(linq.errors) do assert.equal(name, value) end
  end)

  it("raises for a name it does not have, and cannot be changed", function()
    assert.matches("linq.errors has no error type 'RateLimitErorr'",
                   support.raises(function() return linq.errors.RateLimitErorr end))
    assert.matches("read%-only", support.raises(function() linq.errors.MyError = "MyError" end))
  end)

  it("has every type the sources can produce", function()
    local found = 0
    for path in support.read_command("ls src/*.c lua/linq.lua lua/linq/*.lua"):gmatch("%S+") do
      local f = assert(io.open(path, "rb"))
      local source = f:read("*a")
      f:close()
      for name in source:gmatch('"(%u%w*Error)"') do
        found = found + 1
        assert.equal(name, rawget(linq.errors, name), path .. " makes " .. name)
      end
    end
    assert.is_true(found >= 13)
  end)

  it("has the type of every status", function()
    for _, status in ipairs{ 400, 401, 403, 404, 409, 422, 429, 500, 503, 418 } do
      local _, err = client("status/" .. status, { max_retries = 0 }):phone_numbers()
      assert.equal(err.type, rawget(linq.errors, err.type), status)
    end
  end)
end)

describe("waited", function()
  it("is 0, not nil, when the first attempt fails", function()
    local _, err = client("status/404", { max_retries = 0 }):phone_numbers()
    assert.equal(0, err.waited)
    local c = support.client{ mode = "status/401" }
    local e = support.raises(c.phone_numbers, c)
    assert.equal(0, e.waited)
    c:close()
  end)

  it("counts the wait before a retry, on a success and on a failure", function()
    local id = support.id()
    local c = client("flaky/1/503/id=" .. id .. "/retry-after-ms=1", { max_retry_delay = 1 })
    local res, meta = c:phone_numbers()
    assert.is_table(res)
    assert.equal(2, meta.attempts)
    assert.is_true(meta.waited > 0)
    c:close()
    c = client("status/503/retry-after-ms=1", { max_retries = 1, max_retry_delay = 1 })
    local _, err = c:phone_numbers()
    assert.equal(2, err.attempts)
    assert.is_true(err.waited > 0)
    assert.equal(0.001, err.waited)
    c:close()
  end)
end)
