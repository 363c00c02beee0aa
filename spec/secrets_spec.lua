-- The API key never appears in an error, in tostring, or in anything printed.
local linq = require("linq")
local support = require("support")

describe("the API key", function()
  local key = support.key

  it("is in no error text, whatever failed", function()
    for _, mode in ipairs{ "status/500", "html502", "body/200/html", "reset", "body/400/json-other" } do
      local client = support.client{ mode = mode, max_retries = 0 }
      local e = support.raises(client.phone_numbers, client)
      client:close()
      assert.is_nil(tostring(e):find(key, 1, true), mode)
      for k, v in pairs(e) do
        if type(v) == "string" then assert.is_nil(v:find(key, 1, true), mode .. " " .. k) end
      end
    end
  end)

  it("is redacted when a server reflects it back", function()
    for _, status in ipairs{ 200, 400, 502 } do
      local client = support.client{ mode = "reflect/" .. status, max_retries = 0 }
      local e = support.raises(client.phone_numbers, client)
      client:close()
      local text = tostring(e)
      assert.is_nil(text:find(key, 1, true), text)
      assert.matches("%[redacted%]", text)
    end
  end)

  it("leaves no piece of itself where a body excerpt is cut", function()
    -- "you sent: Bearer " is 17 bytes; pads put the 200-byte cut inside the key.
    for pad = 200 - 17 - #key + 1, 200 - 17 do
      local client = support.client{ mode = "reflect/502/" .. pad, max_retries = 0 }
      local e = support.raises(client.phone_numbers, client)
      client:close()
      assert.is_nil(e.body:find(key:sub(1, 4), 1, true), e.body)
    end
  end)

  -- Found by fuzz/fuzz_body.c: folded white space and earlier replacements let the
  -- excerpt reach a key that a fixed window had cut.
  it("leaves no piece of itself after white space or earlier copies of it", function()
    local piece = key:sub(1, 4)
    -- "you sent: Bearer " is 17 bytes: these pads put the key across 201 raw bytes
    -- plus its length, where a fixed window would have cut it.
    for _, mode in ipairs{ "reflect/502/185/spaces", "reflect/502/190/spaces", "reflect/502/195/spaces",
                           "reflect/502/3/repeat", "reflect/502/5/repeat", "reflect/502/8/repeat" } do
      local client = support.client{ mode = mode, max_retries = 0 }
      local e = support.raises(client.phone_numbers, client)
      client:close()
      assert.is_nil(e.body:find(piece, 1, true), mode .. ": " .. e.body)
      assert.is_nil(tostring(e):find(piece, 1, true), mode)
    end
  end)

  it("is redacted from the response headers of an error", function()
    local client = support.client{ mode = "reflect/400", max_retries = 0 }
    local e = support.raises(client.phone_numbers, client)
    client:close()
    assert.equal("you sent: Bearer [redacted]", e.headers["x-reflected"])
  end)

  it("is not printed by the example", function()
    local out, err = support.run_lua({
      LINQ_API_V3_API_KEY = "wrong-" .. key,
      LINQ_API_V3_BASE_URL = support.base(),
    }, 'dofile("examples/list_phone_numbers.lua")')
    assert.matches("AuthenticationError 401", err)
    assert.is_nil((out .. err):find(key, 1, true))
  end)

  it("is not in tostring of the client", function()
    local client = linq.new{ api_key = key, base_url = support.base() }
    assert.is_nil(tostring(client):find(key, 1, true))
    client:close()
  end)
end)
