-- The API reference is generated (docs/generate.lua): the committed copy must be what
-- `make docs` writes now, and it must document what the code has, so a method, an
-- option or an error field added without its documentation fails here.  What the
-- code has is read from the module itself and, for names that only C knows (option
-- lists, error and meta fields), from the C sources.
local linq = require("linq")

local function read(path)
  local f = assert(io.open(path, "rb"))
  local s = f:read("*a")
  f:close()
  return s
end

local function sorted(set)
  local list = {}
  for k in pairs(set) do list[#list + 1] = k end
  table.sort(list)
  return list
end

-- The strings of a C array: static const char *const NAME[] = { "a", "b", NULL };
local function c_array(path, name)
  local body = read(path):match("[^%w_]" .. name .. "%[%]%s*=%s*(%b{})")
  assert(body, path .. " has no array " .. name)
  local names = {}
  for s in body:gmatch('"([^"]*)"') do names[#names + 1] = s end
  assert(#names > 0, path .. ": " .. name .. " holds no names")
  return names
end

-- Field names the C code sets on an error or meta table.
local function c_fields(text, patterns)
  local set = {}
  for _, p in ipairs(patterns) do
    for name in text:gmatch(p) do
      if name:sub(1, 2) ~= "__" then set[name] = true end
    end
  end
  return set
end

local api = read("docs/api.md")

-- The text under a heading, up to the next heading of the same or a higher level.
local function section(heading)
  local level = heading:match("^#+")
  local start = api:find("\n" .. heading .. "\n", 1, true)
  assert(start, "docs/api.md has no heading '" .. heading .. "'")
  local stop, from = #api, start + 1
  while true do
    local at, last, hashes = api:find("\n(#+) ", from)
    if not at or #hashes <= #level then
      stop = at or stop
      break
    end
    from = last
  end
  return api:sub(start, stop)
end

local function assert_documented(text, names, form, where)
  for _, name in ipairs(names) do
    local entry = form:format(name)
    assert(text:find(entry, 1, true), where .. " does not document " .. entry .. " (run `make docs`)")
  end
end

local function client()
  return linq.new{ api_key = "k", base_url = "http://127.0.0.1:1" }
end

describe("docs/api.md", function()
  it("is current with the module and the operation table (run `make docs`)", function()
    local chunk = assert(loadfile("docs/generate.lua"))
    local written = {}
    local write = io.write
    io.write = function(...)  -- luacheck: ignore 122
      for _, s in ipairs{ ... } do written[#written + 1] = s end
    end
    local ok, err = pcall(chunk)
    io.write = write  -- luacheck: ignore 122
    assert(ok, err)
    assert.equal(api, table.concat(written), "docs/api.md is stale: run `make docs`")
  end)

  it("documents every method a client has", function()
    local c = client()
    local names = {}
    for name, v in pairs(debug.getmetatable(c).__index) do
      if type(v) == "function" then names[name] = true end
    end
    c:close()
    assert.truthy(names.get_chat and names.request and names.pages)
    assert_documented(api, sorted(names), "`client:%s(", "docs/api.md")
  end)

  it("documents every field of the module", function()
    for _, name in ipairs(sorted(linq)) do
      assert(api:find("`linq." .. name .. "`", 1, true) or api:find("`linq." .. name .. "(", 1, true),
             "docs/api.md does not document linq." .. name .. " (run `make docs`)")
    end
  end)

  it("documents every method of a webhook verifier and of a replay guard", function()
    local wh = linq.webhook("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")
    local guard = linq.replay_guard()
    for object, form in pairs{ [wh] = "`wh:%s(", [guard] = "`guard:%s(" } do
      local names = {}
      for name, v in pairs(debug.getmetatable(object).__index) do
        if type(v) == "function" and name:sub(1, 2) ~= "__" then names[name] = true end
      end
      assert.truthy(next(names))
      assert_documented(api, sorted(names), form, "docs/api.md")
    end
    wh:close()
  end)

  it("documents every option the C core accepts", function()
    assert_documented(section("### `linq.new([opts])` -> `client`"), c_array("src/client.c", "client_options"),
                      "| `%s` |", "linq.new")
    local call = c_array("src/call.c", "call_options")
    assert_documented(section("#### Call options"), call, "| `%s` |", "the call options")
    local own = {}
    for _, name in ipairs(c_array("src/call.c", "request_options")) do own[name] = true end
    for _, name in ipairs(call) do own[name] = nil end
    assert_documented(section("### `client:request(method, path, [opts])` -> `res, meta`"), sorted(own),
                      "| `opts.%s` |", "client:request")
    assert_documented(section("### `wh:verify(body, headers, [opts])` -> `event`"),
                      c_array("src/webhook.c", "names"), "| `opts.%s` |", "wh:verify")
  end)

  it("documents every field of an error and of meta", function()
    local errors = c_fields(read("src/errors.c"), {
      'lua_setfield%(L, e, "([%w_]+)"%)', 'copy_field%(L, [%w_]+, e, "([%w_]+)"',
    })
    local fail = read("src/webhook.c"):match("\nstatic int fail%(.-\n}")
    for name in pairs(c_fields(assert(fail), { 'lua_setfield%(L, %-2, "([%w_]+)"%)' })) do
      errors[name] = true
    end
    assert.truthy(errors.code and errors.doc_url and errors.reason)
    assert_documented(section("## Errors"), sorted(errors), "| `%s` |", "the Errors section")

    local meta = c_fields(read("src/meta.c"), { 'lua_setfield%(L, %-2, "([%w_]+)"%)' })
    meta.headers = true  -- made on first access (meta_index)
    meta.upload = true   -- set by upload_attachment
    assert.truthy(meta.status and meta.request_id)
    assert_documented(section("## meta"), sorted(meta), "| `%s` |", "the meta section")
  end)

  it("lists every error type the code raises", function()
    local types = {}
    local ls = assert(io.popen("ls src/*.c lua/*.lua lua/linq/*.lua"))
    for path in ls:lines() do
      for name in read(path):gmatch('"(%u%w*Error)"') do types[name] = true end
    end
    ls:close()
    for name in pairs(linq.errors or {}) do types[name] = true end
    assert.truthy(types.RateLimitError and types.WebhookVerificationError)
    assert_documented(section("## Errors"), sorted(types), "| `%s` |", "the Errors section")
  end)
end)
