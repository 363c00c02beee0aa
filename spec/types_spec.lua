-- The Lua Language Server annotations are generated (docs/types.lua): the committed
-- types/linq.lua must be what `make docs` writes now, load as Lua, and annotate what
-- the code has: every operation as a method with one ---@param per path parameter,
-- every method a client has, and exactly the option names the C core accepts.
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
  table.sort(names)
  return names
end

local types = read("types/linq.lua")
local lines = {}
for line in types:gmatch("([^\n]*)\n") do lines[#lines + 1] = line end

-- The annotation lines right above `function Client:name(args) end`, and the args.
local function method(name)
  for i, line in ipairs(lines) do
    local args = line:match("^function Client:" .. name .. "%((.-)%) end$")
    if args then
      local doc, j = {}, i - 1
      while j > 0 and lines[j]:sub(1, 3) == "---" do
        table.insert(doc, 1, lines[j])
        j = j - 1
      end
      return doc, args
    end
  end
end

local function only(lines_, prefix)
  local picked = {}
  for _, l in ipairs(lines_) do
    if l:sub(1, #prefix) == prefix then picked[#picked + 1] = l end
  end
  return picked
end

-- The ---@field names of a ---@class, sorted, with their lines by name.
local function class_fields(name)
  local fields, found = {}, false
  for _, line in ipairs(lines) do
    if line == "---@class " .. name or line:match("^%-%-%-@class " .. name:gsub("%.", "%%.") .. " :") then
      found = true
    elseif found then
      local field = line:match("^%-%-%-@field ([%w_]+)")
      if not field then break end
      fields[field] = line
    end
  end
  assert(found, "types/linq.lua has no ---@class " .. name)
  return fields
end

-- What docs/types.lua writes now (with `which` as its argument).
local function generated(which)
  local chunk = assert(loadfile("docs/types.lua"))
  local written = {}
  local write = io.write
  io.write = function(...)  -- luacheck: ignore 122
    for _, s in ipairs{ ... } do written[#written + 1] = s end
  end
  local ok, err = pcall(chunk, which)
  io.write = write  -- luacheck: ignore 122
  assert(ok, err)
  return table.concat(written)
end

describe("types/linq.lua", function()
  it("is current with the module and the operation table (run `make docs`)", function()
    assert.equal(types, generated(), "types/linq.lua is stale: run `make docs`")
  end)

  it("has a current types/linq/safe.lua annotating every operation of a linq.safe client", function()
    local safe = read("types/linq/safe.lua")
    assert.equal(safe, generated("safe"), "types/linq/safe.lua is stale: run `make docs`")
    assert.equal("table", type(assert(loadfile("types/linq/safe.lua"))()))
    for name in pairs(linq.operations) do
      assert(safe:find("\nfunction SafeClient:" .. name .. "%("),
             "types/linq/safe.lua has no method SafeClient:" .. name)
    end
  end)

  it("is valid Lua, a ---@meta file for the module", function()
    local chunk = assert(loadfile("types/linq.lua"))
    assert.equal("---@meta linq", lines[1])
    local stub = chunk()
    assert.equal("table", type(stub))
    assert.equal("function", type(stub.new))
  end)

  it("annotates every operation, the alias too, with one ---@param per path parameter", function()
    local names = sorted(linq.operations)
    assert.truthy(linq.operations.phone_numbers)
    for _, name in ipairs(names) do
      local op = linq.operations[name]
      local doc, args = method(name)
      assert(doc, "types/linq.lua has no method Client:" .. name)
      local want_params, want_args = {}, {}
      for _, p in ipairs(op.params) do
        if p["in"] == "path" then
          want_params[#want_params + 1] = "---@param " .. p.name .. " string|integer"
          want_args[#want_args + 1] = p.name
        end
      end
      local params = only(doc, "---@param ")
      for i = 1, #want_params do
        assert.equal(want_params[i], params[i], name .. ": path parameter " .. i)
      end
      if op.kind ~= "none" then
        local class = params[#want_params + 1]:match("^%-%-%-@param params%??%s+(linq%.%w+Params)$")
        assert(class, name .. ": no ---@param params")
        want_args[#want_args + 1] = "params"
        -- the fields of its params class: every field that is not a path parameter
        local fields = class_fields(class)
        for _, p in ipairs(op.params) do
          if p["in"] ~= "path" then
            local line = fields[p.name]
            assert(line, class .. " has no field " .. p.name)
            assert.equal(not p.required, line:match("^%-%-%-@field [%w_]+(%??)") == "?",
                         class .. "." .. p.name .. ": optional when not required")
          end
        end
      end
      assert.equal("---@param opts? linq.CallOptions", params[#params], name)
      want_args[#want_args + 1] = "opts"
      assert.equal(#want_args, #params, name .. ": one ---@param per argument")
      assert.equal(table.concat(want_args, ", "), args, name)
      assert.same({ "---@return table res, linq.Meta meta" }, only(doc, "---@return"), name)
    end
  end)

  it("annotates every method a client has", function()
    local c = linq.new{ api_key = "k", base_url = "http://127.0.0.1:1" }
    local names = {}
    for name, v in pairs(debug.getmetatable(c).__index) do
      if type(v) == "function" then names[name] = true end
    end
    c:close()
    for _, name in ipairs(sorted(names)) do
      assert(method(name), "types/linq.lua has no method Client:" .. name .. " (run `make docs`)")
    end
    for _, name in ipairs{ "all", "each_result", "pages", "each", "request", "upload_attachment", "close" } do
      assert(method(name), "types/linq.lua has no method Client:" .. name)
    end
  end)

  it("annotates every field of the module", function()
    for _, name in ipairs(sorted(linq)) do
      local escaped = name:gsub("_", "%%_")
      assert(types:find("\nfunction linq%." .. escaped .. "%(") or types:find("\nlinq%." .. escaped .. " = "),
             "types/linq.lua does not annotate linq." .. name .. " (run `make docs`)")
    end
  end)

  it("declares the classes the API hands out", function()
    for _, name in ipairs{ "linq.Client", "linq.Error", "linq.Meta", "linq.Webhook", "linq.NewOptions",
                           "linq.CallOptions", "linq.AllResult", "linq.ReplayGuard" } do
      assert(types:find("\n---@class " .. name .. "\n", 1, true), "no ---@class " .. name)
    end
  end)

  it("has exactly the option names the C core accepts", function()
    assert.same(c_array("src/client.c", "client_options"), sorted(class_fields("linq.NewOptions")))
    local call = c_array("src/call.c", "call_options")
    assert.same(call, sorted(class_fields("linq.CallOptions")))
    local request = {}
    for _, name in ipairs(call) do request[name] = true end
    for name in pairs(class_fields("linq.RequestOptions")) do request[name] = true end
    assert.same(c_array("src/call.c", "request_options"), sorted(request))
    assert.same(c_array("src/webhook.c", "names"), sorted(class_fields("linq.VerifyOptions")))
  end)
end)
