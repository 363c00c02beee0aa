-- Retries as the official SDKs do them, with the server's delay capped.
-- The simulator counts the attempts; `waited` is the delay the client chose,
-- so nothing here depends on the clock.
local support = require("support")

local function attempts_for(mode, id, opts)
  opts = opts or {}
  opts.mode = mode
  local client = support.client(opts)
  local ok, res, meta = pcall(client.phone_numbers, client)
  client:close()
  return support.hits(id), ok, res, meta
end

describe("retries", function()
  it("get a 503 then a success through, and say how many attempts it took", function()
    local id = support.id()
    local client = support.client{ mode = "flaky/2/503/id=" .. id }
    local res, meta = client:phone_numbers()
    assert.equal(2, #res.phone_numbers)
    assert.equal(3, meta.attempts)
    assert.equal(3, support.hits(id))
    client:close()
  end)

  it("retry 408, 409, 429 and every 5xx, two times by default", function()
    for _, status in ipairs{ 408, 409, 429, 500, 502, 503, 504, 599 } do
      local id = support.id()
      local hits, ok, e = attempts_for("status/" .. status .. "/id=" .. id, id)
      assert.is_false(ok)
      assert.equal(3, hits, "status " .. status)
      assert.equal(3, e.attempts)
    end
  end)

  it("do not retry other 4xx", function()
    for _, status in ipairs{ 400, 401, 403, 404, 422 } do
      local id = support.id()
      local hits, ok, e = attempts_for("status/" .. status .. "/id=" .. id, id)
      assert.is_false(ok)
      assert.equal(1, hits, "status " .. status)
      assert.equal(1, e.attempts)
    end
  end)

  it("follow x-should-retry over the status", function()
    local id = support.id()
    assert.equal(1, (attempts_for("status/503/x-should-retry=false/id=" .. id, id)))
    id = support.id()
    assert.equal(3, (attempts_for("status/400/x-should-retry=true/id=" .. id, id)))
  end)

  it("retry connection failures and timeouts", function()
    local id = support.id()
    local hits, ok, e = attempts_for("reset/id=" .. id, id)
    assert.is_false(ok)
    assert.equal("APIConnectionError", e.type)
    assert.equal(3, hits)
    id = support.id()
    hits, ok, e = attempts_for("slow/2000/id=" .. id, id, { timeout = 0.1, max_retries = 1 })
    assert.is_false(ok)
    assert.equal("APITimeoutError", e.type)
    assert.equal(2, e.attempts)
    assert.equal(2, hits)
  end)

  it("take max_retries from the client and from the call", function()
    local id = support.id()
    assert.equal(1, (attempts_for("status/500/id=" .. id, id, { max_retries = 0 })))
    id = support.id()
    assert.equal(5, (attempts_for("status/500/id=" .. id, id, { max_retries = 4 })))
    id = support.id()
    local client = support.client{ mode = "status/500/id=" .. id }
    support.raises(client.phone_numbers, client, { max_retries = 1 })
    assert.equal(2, support.hits(id))
    client:close()
  end)

  it("wait what retry-after-ms asks, over Retry-After", function()
    local id = support.id()
    local _, ok, _, meta = attempts_for("flaky/1/429/id=" .. id .. "/retry-after-ms=20/retry-after=9",
                                        id, { max_retry_delay = 60 })
    assert.is_true(ok)
    assert.equal(0.02, meta.waited)
  end)

  it("wait what Retry-After asks, in seconds or as an HTTP date", function()
    local id = support.id()
    local _, ok, _, meta = attempts_for("flaky/1/503/id=" .. id .. "/retry-after=0", id,
                                        { max_retry_delay = 60 })
    assert.is_true(ok)
    assert.equal(0, meta.waited)
    id = support.id()
    _, ok, _, meta = attempts_for("flaky/1/503/id=" .. id ..
                                  "/retry-after=Wed%2C%2021%20Oct%202015%2007%3A28%3A00%20GMT",
                                  id, { max_retry_delay = 60 })
    assert.is_true(ok)
    assert.equal(0, meta.waited)  -- a date in the past: no wait
  end)

  it("cap the server's delay at max_retry_delay", function()
    local id = support.id()
    local future = os.date("!%a, %d %b %Y %H:%M:%S GMT", os.time() + 3600):gsub(" ", "%%20")
      :gsub(",", "%%2C"):gsub(":", "%%3A")
    local _, ok, _, meta = attempts_for("flaky/1/503/id=" .. id .. "/retry-after=" .. future,
                                        id, { max_retry_delay = 0.05 })
    assert.is_true(ok)
    assert.equal(0.05, meta.waited)
    id = support.id()
    _, ok, _, meta = attempts_for("flaky/1/429/id=" .. id .. "/retry-after=315360000", id,
                                  { max_retry_delay = 0.05 })
    assert.is_true(ok)
    assert.equal(0.05, meta.waited)
  end)

  it("back off 0.5 s less up to 25 % jitter when the server names no delay", function()
    local id = support.id()
    local _, ok, _, meta = attempts_for("flaky/1/503/id=" .. id, id, { max_retry_delay = 60 })
    assert.is_true(ok)
    assert.is_true(meta.waited >= 0.375 and meta.waited <= 0.5, tostring(meta.waited))
  end)

  it("report the waiting on the error when the retries run out", function()
    local id = support.id()
    local _, ok, e = attempts_for("status/429/retry-after-ms=10/id=" .. id, id,
                                  { max_retry_delay = 60 })
    assert.is_false(ok)
    assert.equal(3, e.attempts)
    assert.equal(0.02, e.waited)
    assert.equal(0.01, e.retry_after)
    assert.matches("%(after 3 attempts%)$", tostring(e))
  end)
end)
