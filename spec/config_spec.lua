-- What the official SDKs let a program configure, and linq does too (issue 13):
-- LINQ_API_V3_LOG and the log_level/logger options, LINQ_API_V3_CUSTOM_HEADERS,
-- the proxy and connect_timeout options.
local linq = require("linq")
local support = require("support")

local function child(env, code)
  env.LINQ_SIM_URL, env.LINQ_SIM_KEY = support.url, support.key
  local out, err, ok = support.run_lua(env,
    "package.path = './lua/?.lua;./spec/?.lua;' .. package.path\n" .. code)
  assert(ok, "the child interpreter failed: " .. err .. out)
  return out, err
end

describe("logging", function()
  local function logged(opts, mode, call)
    local lines = {}
    local o = { api_key = support.key, base_url = support.base(mode), max_retry_delay = 0,
                logger = function(level, line) lines[#lines + 1] = level .. " " .. line end }
    for k, v in pairs(opts) do o[k] = v end
    local c = linq.new(o)
    pcall(call or c.phone_numbers, c)
    c:close()
    return lines
  end

  it("says nothing at the default level, warn, for a call that was retried", function()
    assert.same({}, logged({}, "flaky/1/503/id=" .. support.id()))
  end)

  it("reports a retry at info, with the status, attempt, delay and request id", function()
    local lines = logged({ log_level = "info" }, "flaky/1/503/id=" .. support.id())
    assert.equal(1, #lines)
    assert.matches("^info linq: GET http://127%.0%.0%.1:%d+/flaky/1/503/id=[^ ]+/v3/phone_numbers " ..
                   "%-> 503 %(attempt 1 of 3, %d+ ms, request_id req_%x+%); retrying in 0 s$", lines[1])
  end)

  it("reports every attempt at debug, failures too, the key never", function()
    local lines = logged({ log_level = "debug", max_retries = 0 }, "slow/0/x-leak=" .. support.key)
    assert.equal(1, #lines)
    assert.matches("^debug linq: GET .* %-> 200", lines[1])
    assert.is_nil(lines[1]:find(support.key, 1, true))
    assert.matches("x%-leak=%[redacted%]", lines[1])  -- the key was in the URL
    lines = logged({ log_level = "debug", max_retries = 0, base_url = "http://127.0.0.1:9" })
    assert.matches("^debug linq: GET http://127%.0%.0%.1:9/v3/phone_numbers %-> no reply: ", lines[1])
  end)

  it("logs the calls of client:all too", function()
    local lines = {}
    local c = linq.new{ api_key = support.key, base_url = support.base(), log_level = "debug",
                        logger = function(_, line) lines[#lines + 1] = line end }
    c:all({ { "phone_numbers" }, { "phone_numbers" } })
    c:close()
    assert.equal(2, #lines)
  end)

  it("refuses a bad level or logger at linq.new", function()
    local e = support.raises(linq.new, { api_key = "k", log_level = "verbose" })
    assert.matches("option 'log_level' must be one of off, error, warn, info, debug", e)
    e = support.raises(linq.new, { api_key = "k", logger = "stderr" })
    assert.matches("option 'logger' must be a function", e)
  end)

  it("reads LINQ_API_V3_LOG, warns once about a bad value and keeps warn", function()
    local out, err = child({ LINQ_API_V3_LOG = "loud" }, [[
      local linq = require("linq")
      for _ = 1, 3 do linq.new{ api_key = "k", base_url = "http://127.0.0.1:9" } end
      io.write("made")
    ]])
    assert.equal("made", out)
    local _, count = err:gsub("LINQ_API_V3_LOG was set to \"loud\", expected one of off, " ..
                              "error, warn, info, debug; using warn", "")
    assert.equal(1, count)
    _, err = child({ LINQ_API_V3_LOG = "info" }, [[
      local linq = require("linq")
      local c = linq.new{ max_retry_delay = 0, api_key = os.getenv("LINQ_SIM_KEY"),
                          base_url = os.getenv("LINQ_SIM_URL") .. "/status/503" }
      pcall(c.phone_numbers, c)
    ]])
    local _, retries = err:gsub("retrying in", "")
    assert.equal(2, retries)  -- to stderr by default
  end)
end)

describe("LINQ_API_V3_CUSTOM_HEADERS", function()
  it("adds its lines to every request, as the SDKs parse them; explicit headers win", function()
    local out = child({ LINQ_API_V3_CUSTOM_HEADERS = "X-One:  first \nno colon here\n X-Two : 2\n" ..
                                                     "X-Mine: from env" }, [[
      local linq = require("linq")
      local c = linq.new{ api_key = "k", base_url = os.getenv("LINQ_SIM_URL") .. "/echo",
                          headers = { ["X-Mine"] = "explicit" } }
      local h = c:phone_numbers().headers
      io.write(h["x-one"], "|", h["x-two"], "|", h["x-mine"])
    ]])
    assert.equal("first|2|explicit", out)
  end)

  it("refuses a line whose name cannot be sent, at linq.new", function()
    local out = child({ LINQ_API_V3_CUSTOM_HEADERS = "Bad Name: v" }, [[
      local ok, e = pcall(require("linq").new, { api_key = "k" })
      io.write(tostring(ok), " ", e)
    ]])
    assert.matches("^false .*LINQ_API_V3_CUSTOM_HEADERS has a line whose header name", out)
  end)
end)

describe("the proxy option", function()
  it("sends every call through the proxy (here the simulator, taking the absolute URL)", function()
    local c = linq.new{ api_key = support.key, base_url = "http://api.linq.invalid/api/partner",
                        proxy = support.url }
    local res = c:phone_numbers()
    assert.equal(2, #res.phone_numbers)
    c:close()
  end)

  it("is named in a connection error, without its credentials", function()
    local c = linq.new{ api_key = support.key, base_url = "http://api.linq.invalid/api/partner",
                        max_retries = 0, proxy = "http://user:hunter2@127.0.0.1:9" }
    local e = support.raises(c.phone_numbers, c)
    assert.equal("APIConnectionError", e.type)
    assert.matches("(through the proxy http://127.0.0.1:9, from option 'proxy')", e.message, 1, true)
    assert.is_nil(tostring(e):find("hunter2", 1, true))
    c:close()
  end)

  it("as \"\" turns the environment's proxy off; the environment's is named too", function()
    local out = child({ http_proxy = "http://127.0.0.1:9", NO_PROXY = "", no_proxy = "" }, [[
      local linq = require("linq")
      local base = os.getenv("LINQ_SIM_URL") .. "/api/partner"
      local direct = linq.new{ api_key = os.getenv("LINQ_SIM_KEY"), base_url = base, proxy = "" }
      local via = linq.new{ api_key = os.getenv("LINQ_SIM_KEY"), base_url = base, max_retries = 0 }
      local ok, e = pcall(via.phone_numbers, via)
      io.write(#direct:phone_numbers().phone_numbers, " ", e.message)
    ]])
    assert.matches("^2 .*%(through the proxy http://127%.0%.0%.1:9, from http_proxy%)$", out)
  end)
end)

describe("the connect_timeout option", function()
  it("is checked like timeout", function()
    local e = support.raises(linq.new, { api_key = "k", connect_timeout = 0 })
    assert.matches("option 'connect_timeout' must be more than 0", e)
    e = support.raises(linq.new, { api_key = "k", connect_timeout = "1" })
    assert.matches("option 'connect_timeout' must be a number", e)
    local c = linq.new{ api_key = support.key, base_url = support.base(), connect_timeout = 2 }
    assert.equal(2, #c:phone_numbers().phone_numbers)
    c:close()
  end)
end)
