-- Failures are error objects a program can test and a person can read; a bad
-- server gives a structured error, never a crash or a hang.
local linq = require("linq")
local support = require("support")

local function fail(mode, opts)
  opts = opts or {}
  opts.mode = mode
  opts.max_retries = opts.max_retries or 0
  local client = support.client(opts)
  local e = support.raises(client.phone_numbers, client)
  client:close()
  assert.is_true(linq.is_error(e), tostring(e))
  return e
end

describe("errors", function()
  it("have a type for each status", function()
    local expected = {
      [400] = { "BadRequestError", 1001 },
      [401] = { "AuthenticationError", 2004 },
      [403] = { "PermissionDeniedError", 2005 },
      [404] = { "NotFoundError", 4004 },
      [409] = { "ConflictError", 4009 },
      [422] = { "UnprocessableEntityError", 1002 },
      [429] = { "RateLimitError", 3008 },
      [500] = { "InternalServerError", 3006 },
      [503] = { "InternalServerError", 3009 },
      [418] = { "APIStatusError", 9999 },
      [302] = { "APIStatusError", 9999 },   -- redirects are not followed
    }
    for status, want in pairs(expected) do
      local e = fail("status/" .. status)
      assert.equal(want[1], e.type)
      assert.equal(status, e.status)
      assert.equal(want[2], e.code)
      assert.is_string(e.message)
      assert.matches("^https://docs.linqapp.com/error/codes/%dxxx/" .. want[2] .. "/$", e.doc_url)
      assert.is_string(e.request_id)
      assert.equal(e.request_id, e.headers["x-request-id"])
      assert.equal(1, e.attempts)
    end
  end)

  it("do not follow redirects", function()
    local target = (support.base() .. "/v3/phone_numbers"):gsub("[:/]", function(ch)
      return string.format("%%%02X", ch:byte())
    end)
    local e = fail("status/302/location=" .. target)
    assert.equal("APIStatusError", e.type)
    assert.equal(302, e.status)
    assert.equal(support.base() .. "/v3/phone_numbers", e.headers.location)
  end)

  it("carry the 500 envelope of the reference", function()
    local e = fail("status/500")
    assert.equal(3006, e.code)
    assert.equal("Internal server error", e.message)
    assert.equal("https://docs.linqapp.com/error/codes/3xxx/3006/", e.doc_url)
    assert.equal("linq: InternalServerError 500 (code 3006): Internal server error " ..
                 "<https://docs.linqapp.com/error/codes/3xxx/3006/> [request_id " ..
                 e.request_id .. "]", tostring(e))
  end)

  it("carry the delay a 429 asked for", function()
    local e = fail("status/429/retry-after=7")
    assert.equal("RateLimitError", e.type)
    assert.equal(7, e.retry_after)
    e = fail("status/429/retry-after-ms=1500")
    assert.equal(1.5, e.retry_after)
  end)

  it("give an HTML 502 page from a proxy as an error with an excerpt", function()
    local e = fail("html502")
    assert.equal("InternalServerError", e.type)
    assert.equal(502, e.status)
    assert.is_nil(e.code)
    assert.equal("Bad Gateway", e.message)
    assert.matches("^<html>", e.body)
    assert.is_true(#e.body <= 203)
    assert.is_nil(e.body:find("\n"))
    assert.matches("^linq: InternalServerError 502: Bad Gateway; body: <html>", tostring(e))
  end)

  it("give non-envelope error bodies as errors", function()
    local e = fail("body/409/empty")
    assert.equal("ConflictError", e.type)
    assert.equal("Conflict", e.message)
    assert.is_nil(e.body)
    e = fail("body/503/text")
    assert.equal("upstream connect error or disconnect/reset before headers", e.body)
    e = fail("body/500/malformed")
    assert.equal("InternalServerError", e.type)
    assert.matches('^{"phone_numbers"', e.body)
    e = fail("body/400/json-other")
    assert.equal("plain message", e.message)
    e = fail("body/500/nested")
    assert.equal(500, e.status)
  end)

  it("treat a 2xx body that is not JSON as APIResponseValidationError", function()
    for _, kind in ipairs{ "malformed", "html", "text", "empty", "nested" } do
      local e = fail("body/200/" .. kind)
      assert.equal("APIResponseValidationError", e.type)
      assert.equal(200, e.status)
      assert.equal(1, e.attempts)
    end
    local e = fail("body/200/malformed")
    assert.matches("not valid JSON", e.message)
    assert.matches('^{"phone_numbers"', e.body)
    assert.matches("empty", fail("body/200/empty").message)
  end)

  it("decode what is valid, whatever its size", function()
    local client = support.client{ mode = "body/200/huge-string" }
    local res = client:phone_numbers()
    assert.is_table(res)
    client:close()
  end)

  it("give a refused connection as APIConnectionError", function()
    local client = linq.new{ api_key = "k", base_url = "http://127.0.0.1:1/api", max_retries = 0 }
    local e = support.raises(client.phone_numbers, client)
    assert.equal("APIConnectionError", e.type)
    assert.is_nil(e.status)
    assert.equal(7, e.curl_code)  -- CURLE_COULDNT_CONNECT
    assert.matches("^linq: APIConnectionError: .*[Cc]onnect", tostring(e))
    client:close()
  end)

  it("give a connection closed without a reply as APIConnectionError", function()
    local e = fail("reset")
    assert.equal("APIConnectionError", e.type)
    assert.is_nil(e.status)
    assert.is_number(e.curl_code)
  end)

  it("give a slow reply past the timeout as APITimeoutError", function()
    local e = fail("slow/3000", { timeout = 0.2 })
    assert.equal("APITimeoutError", e.type)
    assert.equal(28, e.curl_code)  -- CURLE_OPERATION_TIMEDOUT
  end)

  it("bound the whole attempt, body included, by the timeout", function()
    -- The headers arrive at once; the body drips a byte every 100 ms.
    local e = fail("drip/100", { timeout = 0.5 })
    assert.equal("APITimeoutError", e.type)
  end)

  it("refuse a body over max_body_size, declared or not", function()
    local e = fail("big/200000", { max_body_size = 100000 })
    assert.equal("APIResponseValidationError", e.type)
    assert.matches("larger than max_body_size", e.message)
    e = fail("big-chunked/300000", { max_body_size = 100000 })
    assert.equal("APIResponseValidationError", e.type)
    local client = support.client{ mode = "big/200000", max_body_size = 300000 }
    assert.is_table(client:phone_numbers())
    client:close()
  end)

  it("are recognised by linq.is_error and nothing else", function()
    assert.is_false(linq.is_error("linq: AuthenticationError"))
    assert.is_false(linq.is_error({ type = "AuthenticationError" }))
    assert.is_false(linq.is_error(nil))
    assert.is_false(linq.is_error(setmetatable({}, { __tostring = function() return "" end })))
    assert.is_true(linq.is_error(fail("status/500")))
  end)

  -- Found by fuzz/fuzz_body.c: converting 1e300 to an integer was undefined behaviour.
  it("keep an envelope code outside the integers as a number", function()
    local e = fail("body/500/code-huge")
    assert.equal(1e300, e.code)
    assert.equal("huge code", e.message)
    assert.matches("%(code 1e%+300%)", tostring(e))
    e = fail("body/500/code-inf")
    assert.equal(math.huge, e.code)
    assert.matches("^linq: InternalServerError 500 %(code [%a%d%.]+%): infinite code", tostring(e))
  end)

  it("keep a server's line breaks in the fields but not in tostring", function()
    local e = fail("body/500/message-lines")
    assert.equal("line one\r\nline two\ttab", e.message)
    local text = tostring(e)
    assert.is_nil(text:find("[\r\n\t]"))
    assert.matches("line one  line two tab <https://docs.linqapp.com/x y>", text)
  end)

  it("print as one line", function()
    for _, mode in ipairs{ "status/404", "html502", "body/500/text", "reset", "body/200/html" } do
      local s = tostring(fail(mode))
      assert.matches("^linq: %u%a+", s)
      assert.is_nil(s:find("[\r\n]"))
    end
  end)
end)
