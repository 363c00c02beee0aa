-- Inside nginx: the same require("linq"), linq.new and client:phone_numbers(),
-- over nginx's cosockets, so a call never blocks the worker.
local linq = require("linq")
local support = require("support")
local nginx_app = require("nginx_app")

describe("inside nginx", function()
  local app, http

  setup(function()
    app = nginx_app.start(nginx_app.read("spec/nginx/app.conf"), { ready = "/ready" })
    http = linq.new{ api_key = "unused", base_url = app.url, max_retries = 0, timeout = 10 }
  end)

  teardown(function()
    if http then http:close() end
    if app then app.stop() end
  end)

  local function get(path)
    local res = http:request("GET", path)
    return res
  end

  it("lists phone numbers from a handler, with a client made at start-up", function()
    local res = get("/list")
    assert.equal(2, res.count)
    assert.equal("+12025551234", res.first)
    assert.equal("https://docs.linqapp.com/guides/phone-numbers/phone-health#at-risk", res.doc_url)
    assert.equal(200, res.status)
    assert.is_string(res.request_id)
    assert.matches("^application/json", res.content_type)
    assert.equal(2, res.init)  -- the call made in init_by_lua, where waiting is harmless
    assert.matches("^linq.Client %(.*, nginx cosockets%)$", res.client)
    assert.is_nil(res.client:find(support.key, 1, true))
  end)

  it("gives a handler the API's error, structured", function()
    local res = get("/error")
    assert.is_false(res.ok)
    assert.is_true(res.is_error)
    assert.equal("AuthenticationError", res.type)
    assert.equal(401, res.status)
    assert.equal(2004, res.code)
    assert.equal("https://docs.linqapp.com/error/codes/2xxx/2004/", res.doc_url)
    assert.matches("^linq: AuthenticationError 401 %(code 2004%): Unauthorized", res.text)
  end)

  it("offers every operation, paging and the upload", function()
    local res = get("/api?ns=" .. support.id())
    assert.is_string(res.chat_id)
    assert.equal(res.chat_id, res.got)
    assert.equal(res.chat_id, res.sent_chat)
    assert.matches("^%x+%-%x+%-4%x+%-%x+%-%x+$", res.key)
    assert.equal(1, res.chats)
    assert.equal(1, res.pages)  -- one chat with limit 1: its page ends with next_cursor null
    assert.is_true(res.read_empty)
    assert.equal(200, res.upload_status)
    assert.matches("bad argument #1 to 'get_chat' %(chat_id must not be empty%)", res.bad)
    assert.equal("NotFoundError", res.missing)
    assert.equal(2001, res.missing_code)
  end)

  it("sends every operation of the table as plain Lua sends it", function()
    local from_nginx = get("/every")
    local c = support.client{ mode = "echo" }
    local plain = require("op_args").echo_all(c, linq.operations, table.unpack or unpack)
    c:close()
    local n = 0
    for name, request in pairs(plain) do
      n = n + 1
      assert.equal(request, from_nginx[name], name)
    end
    assert.is_true(n >= 67)
    assert.same(plain, from_nginx)
  end)

  it("sends bodies and queries, and brings linq.null back", function()
    local res = get("/request")
    assert.equal("PUT", res.method)
    assert.equal('{"forwarding_number":null}', res.body)
    assert.equal("a=1", res.query)
    assert.is_true(res.null)
  end)

  it("reports misuse as plain errors naming the function", function()
    local res = get("/misuse")
    assert.matches("bad argument #1 to 'new' %(unknown option 'apikey'", res.option)
    assert.matches("^content_by_lua", res.option)  -- the caller's position, not ours
    assert.matches("bad argument #1 to 'new' %(option 'api_key' is empty%)", res.empty_key)
    assert.matches("bad argument #1 to 'phone_numbers' %(linq.Client expected, got no value%)", res.dot)
    assert.matches("unknown option 'timout'", res.call_option)
    assert.matches("contains CR, LF, NUL or another control character", res.header)
    assert.matches("bad argument #1 to 'phone_numbers' %(the linq client is closed%)", res.closed)
    assert.matches("option 'ca_file' cannot be used inside nginx: TLS there is verified against " ..
                   "nginx's lua_ssl_trusted_certificate", res.ca_file)
  end)

  it("calls from a timer, and refuses the phases that cannot wait", function()
    local state
    for _ = 1, 100 do
      state = get("/state")
      if state.timer then break end
      support.sleep(0.05)
    end
    assert.equal(2, state.timer)
    assert.matches("cannot call the Linq API in nginx's 'init_worker' phase", state.init_worker)
    assert.matches("content_by_lua%*", state.init_worker)
    get("/logphase")
    for _ = 1, 100 do
      state = get("/state")
      if state.log then break end
      support.sleep(0.05)
    end
    assert.matches("cannot call the Linq API in nginx's 'log' phase", state.log)
  end)

  it("serves other requests while a handler waits on a slow call", function()
    local id = support.id()
    local out = os.tmpname()
    support.execute(string.format("curl -s --noproxy '*' -m 10 -o %s '%s/slow?id=%s' &", out, app.url, id))
    -- Wait until the slow call has reached the simulator: the handler is now waiting.
    local hits = 0
    for _ = 1, 200 do
      hits = support.hits(id)
      if hits > 0 then break end
      support.sleep(0.02)
    end
    assert.equal(1, hits)
    -- A static file from the same single worker, answered before the slow call ends.
    local static = get("/static.json")
    assert.equal(2, #static.phone_numbers)
    local state = get("/state")
    assert.is_nil(state["slow_done_" .. id], "the static request waited for the slow call")
    -- And the slow call itself completes.
    for _ = 1, 100 do
      if get("/state")["slow_done_" .. id] then break end
      support.sleep(0.05)
    end
    assert.is_true(get("/state")["slow_done_" .. id])
    os.remove(out)
  end)

  it("does not deadlock when a handler calls its own nginx", function()
    local res = get("/selfcall")
    assert.is_true(res.ok, tostring(res.count))
    assert.equal(2, res.count)
  end)

  it("keeps the error log free of the key", function()
    assert.is_nil(app.error_log():find(support.key, 1, true))
  end)
end)

describe("the nginx configurations we publish", function()
  local function fetch(url)
    local out = support.read_command("curl -s --noproxy '*' -m 10 -w '\\n%{http_code}' '" .. url .. "'")
    local body, code = out:match("^(.*)\n(%d+)$")
    return body, tonumber(code)
  end

  local sim_env = { LINQ_API_V3_API_KEY = support.key, LINQ_API_V3_BASE_URL = support.base() }

  it("examples/openresty serves the numbers as HTML and as JSON", function()
    local conf = nginx_app.read("examples/openresty/nginx.conf")
      :gsub("listen 127%.0%.0%.1:8080;", "listen 127.0.0.1:${PORT};")
      :gsub("build/openresty", "${PREFIX}")
      :gsub("%$prefix/", "${ROOT}/")
    local app = nginx_app.start(conf, { ready = "/phone_numbers.json", env = sim_env })
    local html, code = fetch(app.url .. "/")
    local json, jcode = fetch(app.url .. "/phone_numbers.json")
    app.stop()
    assert.equal(200, code)
    assert.matches("<td>%+12025551234</td>", html)
    assert.matches(">AT_RISK</a>", html)
    assert.equal(200, jcode)
    assert.equal(2, #require("cjson").decode(json).phone_numbers)
  end)

  it("the README's nginx.conf works as pasted, with the module installed", function()
    local readme = nginx_app.read("README.md")
    local block = readme:match("<!%-%- readme%-nginx%-conf.-```nginx\n(.-)```")
    assert.is_string(block)
    local dest = os.tmpname()
    os.remove(dest)
    assert.is_true(support.execute("make -s install LUA=luajit BUILD=build/luajit PREFIX=" .. dest ..
                                   " >/dev/null"))
    local conf = block:gsub("/usr/local/", dest .. "/"):gsub("127%.0%.0%.1:8080", "127.0.0.1:${PORT}")
    local app = nginx_app.start(conf, { env = sim_env, globals = "pid ${PREFIX}/nginx.pid;" })
    local body, code = fetch(app.url .. "/phone_numbers")
    app.stop()
    support.execute("rm -rf " .. dest)
    assert.equal(200, code, body)
    assert.equal("+12025559876", require("cjson").decode(body).phone_numbers[2].phone_number)
  end)
end)
