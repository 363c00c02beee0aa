-- client:phone_numbers(): GET /v3/phone_numbers, decoded to native tables.
local linq = require("linq")
local support = require("support")

describe("client:phone_numbers()", function()
  it("returns the list as Lua tables, and meta about the reply", function()
    local client = support.client()
    local res, meta = client:phone_numbers()
    assert.equal(2, #res.phone_numbers)
    local first = res.phone_numbers[1]
    assert.equal("550e8400-e29b-41d4-a716-446655440000", first.id)
    assert.equal("+12025551234", first.phone_number)
    assert.equal("HEALTHY", first.health_status.status)
    assert.equal("https://docs.linqapp.com/guides/phone-numbers/phone-health#healthy",
                 first.health_status.doc_url)
    assert.equal("AT_RISK", res.phone_numbers[2].health_status.status)

    assert.equal(200, meta.status)
    assert.equal(1, meta.attempts)
    assert.equal(0, meta.waited)
    assert.is_string(meta.request_id)
    assert.equal(meta.request_id, meta.headers["x-request-id"])
    assert.matches("^application/json", meta.headers["content-type"])
    for name in pairs(meta.headers) do
      assert.equal(name:lower(), name)
    end
    assert.equal(meta.headers, meta.headers)  -- built once, on first access
    assert.equal(meta.headers, rawget(meta, "headers"))
    client:close()
  end)

  it("gives the same answer call after call on one client", function()
    local client = support.client()
    for _ = 1, 20 do
      local res = client:phone_numbers()
      assert.equal("+12025559876", res.phone_numbers[2].phone_number)
    end
    client:close()
  end)

  it("raises an AuthenticationError with the API's code and doc_url for a wrong key", function()
    local client = support.client{ api_key = "not-the-key" }
    local e = support.raises(client.phone_numbers, client)
    assert.is_true(linq.is_error(e))
    assert.equal("AuthenticationError", e.type)
    assert.equal(401, e.status)
    assert.equal(2004, e.code)
    assert.equal("Unauthorized - missing or invalid authentication token", e.message)
    assert.equal("https://docs.linqapp.com/error/codes/2xxx/2004/", e.doc_url)
    assert.equal(1, e.attempts)  -- a 401 is not retried
    assert.matches("^linq: AuthenticationError 401 %(code 2004%): Unauthorized %- missing or " ..
                   "invalid authentication token <https://docs.linqapp.com/error/codes/2xxx/2004/>",
                   tostring(e))
    client:close()
  end)

  it("takes per-call options", function()
    local client = support.client{ mode = "echo" }
    local res = client:phone_numbers{ timeout = 5, max_retries = 0, headers = { ["X-Call"] = "1" } }
    assert.equal("GET", res.method)
    assert.equal("/echo/v3/phone_numbers", res.path)
    assert.equal("1", res.headers["x-call"])
    -- and the next plain call no longer sends the per-call header
    res = client:phone_numbers()
    assert.is_nil(res.headers["x-call"])
    client:close()
  end)

  it("keeps the connection alive across calls", function()
    local client = support.client{ mode = "echo" }
    local first = client:phone_numbers()
    local second = client:phone_numbers()
    assert.is_not_nil(first.connection)
    assert.equal(first.connection, second.connection)
    client:close()
  end)
end)
