-- Packaging: the rockspecs, `make install` / `make uninstall` and `make help` agree
-- with the files in the tree, so a module added under lua/linq/ (or a C file
-- under src/) that one of them forgets fails here, not in a user's install.
-- Needs no simulator.

-- Children run without what `make asan` preloads, and without the variables of
-- a `make test` above us (MAKEFLAGS would hand LUA and BUILD to our make).
local CLEAN_ENV = "unset LD_PRELOAD ASAN_OPTIONS MAKEFLAGS MAKELEVEL MFLAGS; "

local function quote(s)
  return "'" .. s:gsub("'", "'\\''") .. "'"
end

-- The output lines of a shell command, and whether it exited 0.
local function run(cmd)
  local p = assert(io.popen(CLEAN_ENV .. "{ " .. cmd .. "; } 2>&1; echo \"exit=$?\""))
  local lines = {}
  for line in p:lines() do lines[#lines + 1] = line end
  p:close()
  local status = table.remove(lines)
  return lines, status == "exit=0"
end

local function must(cmd)
  local lines, ok = run(cmd)
  assert(ok, cmd .. " failed:\n" .. table.concat(lines, "\n"))
  return lines
end

local function read(path)
  local f = assert(io.open(path, "rb"))
  local s = f:read("*a")
  f:close()
  return s
end

local function exists(path)
  local f = io.open(path, "rb")
  if f then f:close() end
  return f ~= nil
end

local function set(list)
  local s = {}
  for _, v in ipairs(list) do s[v] = true end
  return s
end

local function sorted_keys(t)
  local keys = {}
  for k in pairs(t) do keys[#keys + 1] = k end
  table.sort(keys)
  return keys
end

-- A rockspec is Lua assignments: run it in a table of its own.
local function load_rockspec(path)
  local env, chunk = {}
  if setfenv then
    chunk = assert(loadstring(read(path), "@" .. path))
    setfenv(chunk, env)
  else
    chunk = assert(load(read(path), "@" .. path, "t", env))
  end
  chunk()
  return env
end

local function deep_equal(a, b)
  if type(a) ~= "table" or type(b) ~= "table" then return a == b end
  for k, v in pairs(a) do
    if not deep_equal(v, b[k]) then return false end
  end
  for k in pairs(b) do
    if a[k] == nil then return false end
  end
  return true
end

local lua = os.getenv("LINQ_TEST_LUA") or "lua5.4"
local abi = lua == "luajit" and "5.1" or lua:match("^lua(%d+%.%d+)$")

local modules = must("ls lua/linq/*.lua")          -- lua/linq/paging.lua, ...
local c_sources = must("ls src/*.c")
local rockspecs = must("ls *.rockspec")

describe("the rockspecs", function()
  it("are the scm one and a versioned one", function()
    local names = set(rockspecs)
    assert.is_true(names["linq-scm-1.rockspec"])
    local versioned = 0
    for _, name in ipairs(rockspecs) do
      if name:match("^linq%-%d+%.%d+%.%d+%-%d+%.rockspec$") then versioned = versioned + 1 end
    end
    assert.is_true(versioned >= 1, "no linq-X.Y.Z-N.rockspec beside the scm one")
  end)

  for _, name in ipairs(rockspecs) do
    describe(name, function()
      local spec = load_rockspec(name)

      it("lists every lua/linq/*.lua file as a module, and linq itself", function()
        local listed = spec.build.modules
        assert.equal("lua/linq.lua", listed.linq)
        for _, path in ipairs(modules) do
          local mod = "linq." .. path:match("^lua/linq/(.+)%.lua$")
          assert.equal(path, listed[mod], name .. " does not list " .. path .. " as " .. mod)
        end
      end)

      it("lists no Lua file that is not there", function()
        for mod, path in pairs(spec.build.modules) do
          if type(path) == "string" then
            assert.is_true(exists(path), name .. ": " .. mod .. " = " .. path .. ", no such file")
          end
        end
      end)

      it("builds linq.core from exactly the C files in src/", function()
        local sources = spec.build.modules["linq.core"].sources
        assert.same(sorted_keys(set(c_sources)), sorted_keys(set(sources)))
      end)

      it("names its home page and the MIT licence, as LICENSE does", function()
        assert.equal("https://github.com/linq-lua/linq", spec.description.homepage)
        assert.equal("MIT", spec.description.license)
        assert.truthy(read("LICENSE"):find("MIT License", 1, true))
      end)

      local version = name:match("^linq%-(%d+%.%d+%.%d+)%-%d+%.rockspec$")
      if version then
        it("is the version in its name, from the tag v" .. version, function()
          assert.equal(name:match("^linq%-(.+)%.rockspec$"), spec.version)
          assert.equal("v" .. version, spec.source.tag)
          assert.truthy(read("CHANGELOG.md"):find("\n## " .. version, 1, true),
                        "CHANGELOG.md has no entry for " .. version)
        end)

        it("builds what the scm rockspec builds", function()
          local scm = load_rockspec("linq-scm-1.rockspec")
          for _, field in ipairs{ "build", "dependencies", "external_dependencies", "description" } do
            assert.is_true(deep_equal(scm[field], spec[field]),
                           field .. " differs from linq-scm-1.rockspec")
          end
          assert.equal(scm.source.url, spec.source.url)
        end)
      end
    end)
  end
end)

describe("make install and make uninstall", function()
  local destdir
  local make = "make -s --no-print-directory LUA=" .. lua .. " BUILD=build/" .. lua ..
    " PREFIX=/usr DESTDIR="

  before_each(function()
    destdir = must("mktemp -d")[1]
  end)

  after_each(function()
    if destdir then must("rm -rf " .. quote(destdir)) end
  end)

  local function files()
    local found = {}
    for _, path in ipairs(must("cd " .. quote(destdir) .. " && find . -type f")) do
      found[#found + 1] = path:gsub("^%./", "")
    end
    table.sort(found)
    return found
  end

  it("installs the core, linq.lua and every lua/linq/*.lua, and uninstall removes them all", function()
    must(make .. quote(destdir) .. " install")
    local lib, share = "usr/lib/lua/" .. abi .. "/", "usr/share/lua/" .. abi .. "/"
    local expected = { [lib .. "linq/core.so"] = "build/" .. lua .. "/linq/core.so",
                       [share .. "linq.lua"] = "lua/linq.lua" }
    for _, path in ipairs(modules) do
      expected[share .. path:gsub("^lua/", "")] = path
    end
    assert.same(sorted_keys(expected), files())
    for installed, source in pairs(expected) do
      assert.is_true(read(destdir .. "/" .. installed) == read(source), installed .. " differs from " .. source)
    end

    must(make .. quote(destdir) .. " uninstall")
    assert.same({}, files())
    assert.same({}, must("find " .. quote(destdir) .. " -name linq"))
  end)

  it("uninstall leaves a file it did not install, and its folder", function()
    must(make .. quote(destdir) .. " install")
    local other = "usr/share/lua/" .. abi .. "/linq/not_ours.lua"
    must("touch " .. quote(destdir .. "/" .. other))
    must(make .. quote(destdir) .. " uninstall")
    assert.same({ other }, files())
  end)
end)

describe("make help", function()
  it("has a line for every target the Makefile declares phony", function()
    local makefile = read("Makefile"):gsub("\\\n", " ")
    local phony = assert(makefile:match("\n%.PHONY:([^\n]*)"), "no .PHONY line")
    local help = "\n" .. table.concat(must("make -s --no-print-directory help"), "\n") .. "\n"
    local count = 0
    for target in phony:gmatch("%S+") do
      count = count + 1
      local escaped = target:gsub("%-", "%%-")
      assert.truthy(help:find("\n  " .. escaped .. " +%S"), "make help does not list " .. target)
    end
    assert.is_true(count > 10)
  end)
end)
