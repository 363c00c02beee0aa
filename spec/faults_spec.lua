-- The fault matrix: whatever the network or the server does, a structured error
-- or a correct answer, never a crash, a hang or unbounded memory.
local linq = require("linq")
local support = require("support")

local function call(mode, opts)
  opts = opts or {}
  opts.mode = mode
  if opts.max_retries == nil then opts.max_retries = 0 end
  local client = support.client(opts)
  local ok, res, meta = pcall(client.phone_numbers, client)
  client:close()
  return ok, res, meta
end

local function fails(mode, opts)
  local ok, e = call(mode, opts)
  assert.is_false(ok, mode .. " succeeded")
  assert.is_true(linq.is_error(e), tostring(e))
  return e
end

describe("faults", function()
  it("connection refused", function()
    local client = linq.new{ api_key = "k", base_url = "http://127.0.0.1:1", max_retries = 0 }
    local e = support.raises(client.phone_numbers, client)
    assert.equal("APIConnectionError", e.type)
    assert.equal(7, e.curl_code)
  end)

  -- Found by fuzz/fuzz_headers.c: no header field at all left a NULL store.
  it("a status line with no header fields", function()
    local e = fails("bare/503")
    assert.equal("InternalServerError", e.type)
    assert.equal(503, e.status)
    assert.same({}, e.headers)
    assert.is_nil(e.request_id)
  end)

  it("the connection closed before the headers", function()
    local e = fails("reset")
    assert.equal("APIConnectionError", e.type)
    assert.equal(52, e.curl_code)  -- CURLE_GOT_NOTHING
  end)

  it("the connection closed in the middle of the body", function()
    for _, bytes in ipairs{ 1, 50, 200 } do
      local e = fails("cut/" .. bytes)
      assert.equal("APIConnectionError", e.type)
      assert.equal(18, e.curl_code)  -- CURLE_PARTIAL_FILE
      assert.is_nil(e.status)        -- a half reply is no reply
    end
  end)

  it("a body shorter than its Content-Length", function()
    local e = fails("short")
    assert.equal("APIConnectionError", e.type)
    assert.equal(18, e.curl_code)
  end)

  it("a partial body is retried like any connection failure", function()
    local id = support.id()
    local ok, e = call("cut/100/id=" .. id, { max_retries = 2 })
    assert.is_false(ok)
    assert.equal(3, e.attempts)
    assert.equal(3, support.hits(id))
  end)

  it("a drip that outlasts the timeout: the whole attempt is bounded", function()
    local e = fails("drip/50", { timeout = 0.3 })
    assert.equal("APITimeoutError", e.type)
  end)

  it("a 100 MiB body, declared, is refused at the cap before it is read", function()
    local e = fails("big/104857600")
    assert.equal("APIResponseValidationError", e.type)
    assert.matches("larger than max_body_size", e.message)
    assert.equal(200, e.status)
  end)

  it("a 100 MiB chunked body is refused once it passes the cap", function()
    local e = fails("big-chunked/104857600", { max_body_size = 1024 * 1024 })
    assert.equal("APIResponseValidationError", e.type)
  end)

  it("a huge response header", function()
    local e = fails("bigheader/1048576")
    assert.equal("APIResponseValidationError", e.type)  -- over libcurl's 100 KiB a line
    assert.equal(1, e.attempts)
    local ok, res = call("bigheader/50000")
    assert.is_true(ok, tostring(res))
    assert.equal(2, #res.phone_numbers)
  end)

  it("gzip and chunked bodies", function()
    local ok, res, meta = call("gzip")
    assert.is_true(ok, tostring(res))
    assert.equal("gzip", meta.headers["content-encoding"])
    assert.equal(2, #res.phone_numbers)
    ok, res, meta = call("chunked")
    assert.is_true(ok, tostring(res))
    assert.is_nil(meta.headers["content-length"])
    assert.equal(2, #res.phone_numbers)
  end)

  it("invalid UTF-8 in a JSON string is passed through as bytes", function()
    local ok, res = call("body/200/invalid-utf8")
    if ok then
      assert.is_table(res)
    else
      assert.equal("APIResponseValidationError", res.type)
    end
  end)

  it("JSON nested 10,000 deep is a structured error, not a stack overflow", function()
    local e = fails("body/200/nested")
    assert.equal("APIResponseValidationError", e.type)
    assert.matches("not valid JSON", e.message)
    e = fails("body/500/nested")
    assert.equal("InternalServerError", e.type)
  end)

  it("a Retry-After of ten years is capped", function()
    local id = support.id()
    local ok, _, meta = call("flaky/1/429/id=" .. id .. "/retry-after=315360000",
                             { max_retries = 1, max_retry_delay = 0.01 })
    assert.is_true(ok)
    assert.equal(0.01, meta.waited)
  end)

  it("429 and 503 storms exhaust the retries, counted by the simulator", function()
    for _, status in ipairs{ 429, 503 } do
      local id = support.id()
      local ok, e = call("status/" .. status .. "/id=" .. id .. "/retry-after-ms=1",
                         { max_retries = 5, max_retry_delay = 1 })
      assert.is_false(ok)
      assert.equal(6, e.attempts)
      assert.equal(6, support.hits(id))
      assert.equal(0.005, e.waited)
    end
  end)

  it("a 2 MB body that is not JSON still gives an excerpt", function()
    -- The module frees its copy of a large body before decoding it.
    local e = fails("big-invalid/2000000")
    assert.equal("APIResponseValidationError", e.type)
    assert.matches("not valid JSON", e.message)
    assert.matches("^{\"phone_numbers\":%[%],\"pad\":\"xxxx.*%.%.%.$", e.body)
  end)

  it("a 200 with an HTML body", function()
    local e = fails("body/200/html")
    assert.equal("APIResponseValidationError", e.type)
    assert.matches("^<", e.body)
  end)

  it("TLS on a port that speaks plain HTTP", function()
    local client = linq.new{ api_key = "k", base_url = support.url:gsub("^http:", "https:"),
                             max_retries = 0 }
    local e = support.raises(client.phone_numbers, client)
    assert.equal("APIConnectionError", e.type)
    client:close()
  end)
end)

describe("misuse", function()
  it("calls from inside coroutines", function()
    local client = support.client()
    local co = coroutine.wrap(function()
      local res = client:phone_numbers()
      coroutine.yield(#res.phone_numbers)
      local ok, e = pcall(client.phone_numbers, client, { headers = { ["X-A"] = "\n" } })
      coroutine.yield(ok, e)
    end)
    assert.equal(2, co())
    local ok, e = co()
    assert.is_false(ok)
    assert.matches("contains CR, LF, NUL or another control character", e)
    client:close()
  end)

  it("ten thousand clients made and dropped leave no descriptor and no memory behind", function()
    local out, err, ok = support.run_lua({}, string.format([[
      local linq = require("linq")
      local function fds()
        local n = 0
        local p = io.popen("ls /proc/" .. io.open("/proc/self/stat"):read("*l"):match("^%%d+") .. "/fd")
        for _ in p:lines() do n = n + 1 end
        p:close()
        return n
      end
      local function rss_kib()
        return tonumber(io.open("/proc/self/statm"):read("*l"):match("^%%d+ (%%d+)")) * 4
      end
      local function churn(n)
        for i = 1, n do
          local c = linq.new{ api_key = %q, base_url = %q }
          if i %% 10 == 0 then c:phone_numbers() end
          if i %% 2 == 0 then c:close() end
        end
        collectgarbage()
        collectgarbage()
      end
      churn(1000)
      local fd0, rss0 = fds(), rss_kib()
      churn(10000)
      io.write(fds() - fd0, " ", rss_kib() - rss0)
    ]], support.key, support.base()))
    assert.is_true(ok, err)
    local fd_growth, rss_growth = out:match("^(%-?%d+) (%-?%d+)$")
    assert.equal(0, tonumber(fd_growth))
    assert.is_true(tonumber(rss_growth) <= 1024, "RSS grew by " .. rss_growth .. " KiB")
  end)
end)
