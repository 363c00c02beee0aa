-- A client's life: close, __gc and __close share one idempotent cleanup, and a
-- closed client refuses every call.
local linq = require("linq")
local support = require("support")

describe("a client", function()
  it("closes idempotently and refuses calls afterwards", function()
    local client = support.client()
    client:close()
    client:close()
    -- Lua 5.4 words a bad self in a method call as "calling 'f' on bad self".
    assert.matches("'phone_numbers'.* %(the linq client is closed%)",
                   support.raises(function() local r = client:phone_numbers(); return r end))
    assert.matches("bad argument #1 to 'phone_numbers' %(the linq client is closed%)",
                   support.raises(function() local r = client.phone_numbers(client); return r end))
    assert.matches("the linq client is closed",
                   support.raises(function() local r = client:request("GET", "/v3/x"); return r end))
    assert.matches("^linq.Client %(closed%)", tostring(client))
  end)

  it("is freed by the garbage collector, open or closed", function()
    for i = 1, 200 do
      local c = support.client()
      if i % 2 == 0 then c:close() end
    end
    collectgarbage()
    collectgarbage()
    local c = support.client()
    assert.equal(2, #c:phone_numbers().phone_numbers)
  end)

  it("closes at the end of a <close> scope on Lua 5.4", function()
    if _VERSION ~= "Lua 5.4" then
      return pending("to-be-closed variables need Lua 5.4")
    end
    local chunk = assert(load([[
      local support = ...
      local kept
      do
        local c <close> = support.client()
        kept = c
        assert(#c:phone_numbers().phone_numbers == 2)
      end
      return kept
    ]]))
    local kept = chunk(support)
    assert.matches("^linq.Client %(closed%)", tostring(kept))
  end)

  it("shows its base URL but never its key", function()
    local client = support.client{ api_key = "sk_live_SECRET_0123456789" }
    local s = tostring(client)
    assert.matches("^linq.Client %(" .. support.base():gsub("%p", "%%%0") .. "%)", s)
    assert.is_nil(s:find("SECRET", 1, true))
    client:close()
  end)

  it("keeps its metatable from being replaced", function()
    local client = support.client()
    assert.equal("linq.Client", getmetatable(client))
    client:close()
  end)

  it("survives finalizers that call it while it builds a result", function()
    -- With the collector at full pace, finalizers run at allocations inside a call;
    -- one that re-enters the same client must get an error, never a second
    -- transfer on the same libcurl handle.  A child interpreter keeps busted's heap
    -- and collector settings out of it (lua5.4 starts in generational mode).
    local out, err, ok = support.run_lua({}, string.format([[
      pcall(collectgarbage, "incremental")
      collectgarbage("setpause", 0)
      local client = require("linq").new{ api_key = %q, base_url = %q }
      local ok_count, refused, other = 0, 0, nil
      -- Lua 5.1 and LuaJIT finalize userdata only: newproxy makes one.
      local function finalized(fn)
        if newproxy then
          local p = newproxy(true)
          getmetatable(p).__gc = fn
          return p
        end
        return setmetatable({}, { __gc = fn })
      end
      for _ = 1, 100 do
        for _ = 1, 5 do
          finalized(function()
            local ok, r = pcall(client.phone_numbers, client)
            if ok then ok_count = ok_count + 1
            elseif tostring(r):find("busy with a call", 1, true) then refused = refused + 1
            else other = tostring(r) end
          end)
        end
        assert(#client:phone_numbers().phone_numbers == 2)
      end
      collectgarbage("setpause", 200)
      collectgarbage()
      assert(#client:phone_numbers().phone_numbers == 2)
      io.write(refused, " ", ok_count, " ", tostring(other))
    ]], support.key, support.base()))
    assert.is_true(ok, err)
    local refused, succeeded, other = out:match("^(%d+) (%d+) (.*)$")
    assert.equal("nil", other)
    assert.is_true(tonumber(refused) > 0, "no finalizer ran during a call: " .. out)
    assert.equal(500, tonumber(refused) + tonumber(succeeded))
  end)
end)

describe("the module", function()
  it("has a version, a null and keeps the application's cjson settings", function()
    assert.matches("^%d+%.%d+%.%d+$", linq._VERSION)
    local cjson = require("cjson")
    assert.equal(cjson.null, linq.null)
    cjson.decode_max_depth(2)   -- the application's own setting
    local ok = pcall(function()
      local client = support.client()
      assert.equal(2, #client:phone_numbers().phone_numbers)  -- 4 levels deep
      client:close()
    end)
    local depth = cjson.decode_max_depth()
    cjson.decode_max_depth(1000)
    assert.is_true(ok)
    assert.equal(2, depth)
  end)
end)
