-- linq.new and per-call options: every mistake is a plain Lua error in the usual
-- "bad argument" form, raised before any traffic.
local linq = require("linq")
local support = require("support")

local function new_error(opts)
  return support.raises(function() local c = linq.new(opts); return c end)
end

describe("linq.new", function()
  it("accepts no table at all when the key comes from the environment", function()
    local out, err, ok = support.run_lua({ LINQ_API_V3_API_KEY = "env-key-123" }, [[
      local c = require("linq").new()
      io.write(tostring(c))
    ]])
    assert.is_true(ok, err)
    assert.matches("^linq.Client %(https://api.linqapp.com/api/partner%)", out)
  end)

  it("without any key names the environment variable", function()
    local _, err, ok = support.run_lua({ LINQ_API_V3_API_KEY = "" }, [[
      require("linq").new{}
    ]])
    assert.is_false(ok)
    assert.matches("bad argument #1 to 'new' %(no API key: pass api_key or set the " ..
                   "environment variable LINQ_API_V3_API_KEY%)", err)
  end)

  it("takes the key and base URL from the environment and uses them", function()
    local out, err, ok = support.run_lua({
      LINQ_API_V3_API_KEY = support.key,
      LINQ_API_V3_BASE_URL = support.base(),
    }, [[
      local res = require("linq").new():phone_numbers()
      io.write(#res.phone_numbers)
    ]])
    assert.is_true(ok, err)
    assert.equal("2", out)
  end)

  it("counts an empty LINQ_API_V3_BASE_URL as unset", function()
    local out, err, ok = support.run_lua({ LINQ_API_V3_API_KEY = "k", LINQ_API_V3_BASE_URL = "" },
                                         'io.write(tostring(require("linq").new()))')
    assert.is_true(ok, err)
    assert.matches("^linq.Client %(https://api.linqapp.com/api/partner%)", out)
  end)

  it("prefers options over the environment", function()
    local out, err, ok = support.run_lua({
      LINQ_API_V3_API_KEY = "wrong-key",
      LINQ_API_V3_BASE_URL = "http://127.0.0.1:1/nowhere",
    }, string.format([[
      local res = require("linq").new{ api_key = %q, base_url = %q }:phone_numbers()
      io.write(#res.phone_numbers)
    ]], support.key, support.base()))
    assert.is_true(ok, err)
    assert.equal("2", out)
  end)

  it("refuses an unknown option and suggests the one meant", function()
    assert.matches("bad argument #1 to 'new' %(unknown option 'apikey' %(did you mean 'api_key'%?%); " ..
                   "the options are: api_key, base_url, timeout, connect_timeout, max_retries, " ..
                   "headers, ca_file, proxy, max_body_size, max_retry_delay, log_level, logger%)",
                   new_error{ apikey = "k" })
    assert.matches("unknown option 'colour'; the options are: api_key,",
                   new_error{ api_key = "k", colour = "red" })
  end)

  it("refuses options of the wrong type or range", function()
    assert.matches("bad argument #1 to 'new' %(table expected, got string%)", new_error("k"))
    assert.matches("option 'timeout' must be a number, got a string",
                   new_error{ api_key = "k", timeout = "5" })
    assert.matches("option 'timeout' must be more than 0", new_error{ api_key = "k", timeout = -1 })
    assert.matches("option 'timeout' must be more than 0", new_error{ api_key = "k", timeout = 0 })
    assert.matches("option 'timeout' must be more than 0",
                   new_error{ api_key = "k", timeout = 0 / 0 })
    assert.matches("option 'max_retries' must be a whole number",
                   new_error{ api_key = "k", max_retries = 1.5 })
    assert.matches("option 'max_retries' must be at least 0",
                   new_error{ api_key = "k", max_retries = -1 })
    assert.matches("option 'max_body_size' must be at least 1",
                   new_error{ api_key = "k", max_body_size = 0 })
    assert.matches("option 'headers' must be a table", new_error{ api_key = "k", headers = "x" })
    assert.matches("option 'api_key' must be a string", new_error{ api_key = 42 })
  end)

  it("accepts fractional timeouts", function()
    local c = linq.new{ api_key = "k", timeout = 0.25 }
    c:close()
  end)

  it("refuses a key with CR, LF, NUL or a space, without quoting it", function()
    for _, key in ipairs{ "abc\r\nX-Evil: 1", "abc\0def", "abc def", "" } do
      local err = new_error{ api_key = key }
      assert.matches("bad argument #1 to 'new' %(option 'api_key' ", err)
      if #key > 0 then assert.is_nil(err:find(key, 1, true)) end
    end
  end)

  it("accepts only http and https base URLs, without credentials, query or fragment", function()
    assert.matches("must start with http:// or https://",
                   new_error{ api_key = "k", base_url = "ftp://example.com" })
    assert.matches("must start with http:// or https://",
                   new_error{ api_key = "k", base_url = "file:///etc/passwd" })
    assert.matches("has no host", new_error{ api_key = "k", base_url = "https://" })
    assert.matches("must not hold credentials",
                   new_error{ api_key = "k", base_url = "https://user:pw@example.com/api" })
    assert.matches("must not have a query or fragment",
                   new_error{ api_key = "k", base_url = "https://example.com/api?x=1" })
    assert.matches("contains a space or a control character",
                   new_error{ api_key = "k", base_url = "https://example.com/a\r\nb" })
    linq.new{ api_key = "k", base_url = "HTTP://example.com/api/" }:close()
  end)

  it("refuses bad header names and values", function()
    assert.matches("invalid header name 'Bad Name'",
                   new_error{ api_key = "k", headers = { ["Bad Name"] = "v" } })
    assert.matches("header 'X%-A' contains CR, LF, NUL or another control character",
                   new_error{ api_key = "k", headers = { ["X-A"] = "v\r\nX-Injected: 1" } })
    assert.matches("header 'X%-A' contains CR, LF, NUL or another control character",
                   new_error{ api_key = "k", headers = { ["X-A"] = "v\0" } })
    assert.matches("header 'X%-A' must be a string",
                   new_error{ api_key = "k", headers = { ["X-A"] = {} } })
  end)

  it("refuses a ca_file it cannot read", function()
    assert.matches("option 'ca_file': cannot open '/nonexistent/ca.pem'",
                   new_error{ api_key = "k", ca_file = "/nonexistent/ca.pem" })
  end)
end)

describe("misuse of a client", function()
  local client = support.client()

  it("names the method and the argument", function()
    assert.matches("bad argument #1 to 'phone_numbers' %(linq.Client expected, got no value%)",
                   support.raises(function() local r = client.phone_numbers(); return r end))
    assert.matches("bad argument #1 to 'request' %(linq.Client expected, got string%)",
                   support.raises(function() local r = client.request("GET", "/v3/x"); return r end))
    assert.matches("bad argument #1 to 'phone_numbers' %(table expected, got number%)",
                   support.raises(function() local r = client:phone_numbers(5); return r end))
  end)

  it("refuses unknown or bad per-call options", function()
    assert.matches("unknown option 'timout' %(did you mean 'timeout'%?%)",
                   support.raises(function() local r = client:phone_numbers{ timout = 1 }; return r end))
    assert.matches("option 'timeout' must be more than 0",
                   support.raises(function() local r = client:phone_numbers{ timeout = -2 }; return r end))
    assert.matches("unknown option 'bdy'",
                   support.raises(function() local r = client:request("POST", "/v3/x", { bdy = 1 }); return r end))
  end)

  it("refuses bad methods and paths", function()
    assert.matches("bad argument #1 to 'request' %(HTTP method must be GET, POST, PUT, PATCH or DELETE, got 'FETCH'%)",
                   support.raises(function() local r = client:request("FETCH", "/v3/x"); return r end))
    assert.matches("bad argument #2 to 'request' %(path contains a space or a control character",
                   support.raises(function() local r = client:request("GET", "/v3/x\r\nHost: evil"); return r end))
    assert.matches("path contains a space or a control character",
                   support.raises(function() local r = client:request("GET", "/v3/x\0y"); return r end))
    assert.matches("path is empty", support.raises(function() local r = client:request("GET", ""); return r end))
    assert.matches("path must be a path relative to base_url",
                   support.raises(function() local r = client:request("GET", "https://evil.example/x"); return r end))
  end)

  it("sends nothing when the arguments are wrong", function()
    local id = support.id()
    local c = support.client{ mode = "status/500/id=" .. id }
    support.raises(function() local r = c:phone_numbers{ headers = { ["X-A"] = "1\n2" } }; return r end)
    support.raises(function() local r = c:request("GET", "/v3/x", { query = { a = { {} } } }); return r end)
    support.raises(function() local r = c:request("GET", "/v3/x", { query = { [1] = "x" } }); return r end)
    support.raises(function() local r = c:request("POST", "/v3/x", { body = { f = print } }); return r end)
    assert.equal(0, support.hits(id))
    c:close()
  end)

  it("refuses a body that cannot be JSON", function()
    assert.matches("option 'body' cannot be encoded as JSON",
                   support.raises(function()
                     local r = client:request("POST", "/v3/x", { body = { f = print } })
                     return r
                   end))
  end)
end)
