-- The API reference is generated from linq.operations; the committed copy must be
-- what `make docs` writes now.
describe("docs/api.md", function()
  it("is current with the operation table (run `make docs`)", function()
    local chunk = assert(loadfile("docs/generate.lua"))
    local written = {}
    local write = io.write
    io.write = function(...)  -- luacheck: ignore 122
      for _, s in ipairs{ ... } do written[#written + 1] = s end
    end
    local ok, err = pcall(chunk)
    io.write = write  -- luacheck: ignore 122
    assert(ok, err)
    local f = assert(io.open("docs/api.md", "rb"))
    local committed = f:read("*a")
    f:close()
    assert.equal(committed, table.concat(written), "docs/api.md is stale: run `make docs`")
  end)
end)
