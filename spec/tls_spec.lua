-- TLS is always verified: ca_file only changes which CAs are trusted.  The
-- simulator's certificate comes from a throwaway CA and names only "localhost".
local linq = require("linq")
local support = require("support")

local tls_url = assert(os.getenv("LINQ_SIM_TLS_URL"))
local ca = assert(os.getenv("LINQ_SIM_CA"))

local function tls_client(url, opts)
  opts = opts or {}
  opts.api_key = support.key
  opts.base_url = url .. "/api/partner"
  opts.max_retry_delay = 0
  return linq.new(opts)
end

describe("TLS", function()
  it("works with the test CA given as ca_file", function()
    local client = tls_client(tls_url, { ca_file = ca })
    local res, meta = client:phone_numbers()
    assert.equal(200, meta.status)
    assert.equal(2, #res.phone_numbers)
    client:close()
  end)

  it("refuses a certificate from a CA it does not trust, without retrying", function()
    local client = tls_client(tls_url)
    local e = support.raises(client.phone_numbers, client)
    assert.is_true(linq.is_error(e))
    assert.equal("APIConnectionError", e.type)
    assert.equal(60, e.curl_code)  -- CURLE_PEER_FAILED_VERIFICATION
    assert.equal(1, e.attempts)
    assert.matches("[Cc]ertificate", e.message)
    client:close()
  end)

  it("refuses a certificate for another host name", function()
    local wrong_host = tls_url:gsub("//localhost:", "//127.0.0.1:")
    local client = tls_client(wrong_host, { ca_file = ca })
    local e = support.raises(client.phone_numbers, client)
    assert.equal("APIConnectionError", e.type)
    assert.equal(60, e.curl_code)
    assert.matches("127%.0%.0%.1", e.message)
    client:close()
  end)

  it("has no option that turns verification off", function()
    for _, name in ipairs{ "insecure", "verify", "ssl_verify", "verify_peer", "tls_verify" } do
      assert.matches("unknown option '" .. name .. "'",
                     support.raises(linq.new, { api_key = "k", [name] = false }))
    end
  end)
end)

describe("client:all over HTTPS", function()
  it("multiplexes the calls of a batch over one HTTP/2 connection", function()
    local client = linq.new{ api_key = support.key, base_url = tls_url, ca_file = ca,
                             max_retry_delay = 0 }
    local calls = {}
    for i = 1, 8 do calls[i] = { "request", "GET", "/echo/v3/x" } end
    local results = client:all(calls, { concurrency = 8 })
    for i = 1, 8 do
      assert.is_true(results[i].ok, tostring(results[i].err))
      assert.equal(2, results[i].res.http_version)
      -- the simulator's connection serial number: one connection carried all eight
      assert.equal(results[1].res.connection, results[i].res.connection)
    end
    client:close()
  end)
end)
