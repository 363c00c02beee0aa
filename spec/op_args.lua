-- Arguments that satisfy an operation's declared parameters (linq.operations), for
-- checks that every method is reachable through a front (spec/nginx_spec.lua).
-- Only the shape matters here: the echo mode of the simulator answers anything.
local M = {}

local SAMPLE = {
  string = "+12025551234",
  integer = 1,
  number = 1.5,
  boolean = true,
  object = { parts = { { type = "text", value = "x" } } },
  ["string[]"] = { "+12025550100" },
  ["object[]"] = { { text = "a" } },
}

-- The argument list for op: path parameters, then params when the operation has them.
function M.for_operation(op)
  local args, params = {}, nil
  for _, p in ipairs(op.params) do
    if p["in"] == "path" then
      args[#args + 1] = "id-" .. #args + 1
    elseif p.required then
      params = params or {}
      params[p.name] = SAMPLE[p.type]
    end
  end
  if op.kind ~= "none" then args[#args + 1] = params or {} end
  return args
end

-- What the echo saw for each operation called on client: name -> "METHOD path".
function M.echo_all(client, operations, unpack)
  local seen = {}
  for name, op in pairs(operations) do
    local args = M.for_operation(op)
    local res = client[name](client, unpack(args, 1, #args))
    -- void operations give {}: they are checked by their absence of a path
    seen[name] = res.method and (res.method .. " " .. res.path) or "void"
  end
  return seen
end

return M
