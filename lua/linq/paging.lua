--- Paging over the list operations, for every front (plain Lua and nginx).
-- Each step is a whole API call, so iteration lives here in Lua, over the
-- client's own methods: `client:pages(name, ...)` yields page, meta and
-- `client:each(name, ...)` yields item, page, meta, where `...` are exactly the
-- arguments the operation takes.  Cursor paging repeats every original query
-- parameter plus `cursor`; offset paging advances `offset` by the items seen.
local M = {}

local type, pairs, ipairs, tonumber, setmetatable, error =
  type, pairs, ipairs, tonumber, setmetatable, error
local unpack = table.unpack or unpack  -- luacheck: compat

local function copy(t)
  if type(t) ~= "table" then return t end
  local c = {}
  for k, v in pairs(t) do c[k] = v end
  return c
end

-- The number of edits between two short names, for "did you mean".
local function distance(a, b)
  local row = {}
  for j = 0, #b do row[j] = j end
  for i = 1, #a do
    local diag, left = row[0], i
    row[0] = i
    for j = 1, #b do
      local up = row[j]
      local best = diag + (a:byte(i) == b:byte(j) and 0 or 1)
      if up + 1 < best then best = up + 1 end
      if left + 1 < best then best = left + 1 end
      diag, left, row[j] = up, best, best
    end
  end
  return row[#b]
end

-- As the C core words its errors: no position, the function named.
local function argerror(fname, msg, n)
  error(string.format("bad argument #%d to '%s' (%s)", n or 1, fname, msg), 0)
end

-- The operation's description, or a "bad argument" naming the nearest paged one.
local function paged_operation(operations, fname, name)
  if type(name) ~= "string" then
    argerror(fname, "the name of a list operation expected, got " .. type(name))
  end
  local op = operations[name]
  if op and op.paged then return op end
  local near, best = nil, math.huge
  for other, o in pairs(operations) do
    if o.paged then
      local d = distance(name, other)
      if d < best or (d == best and other < near) then near, best = other, d end
    end
  end
  argerror(fname, string.format("'%s' is %s; did you mean '%s'?", name,
                                op and "not a paged operation" or "not an operation", near))
end

local function repeated_cursor(error_mt, meta, cursor)
  return setmetatable({
    type = "APIResponseValidationError",
    message = "the server returned a cursor it had already given (" .. cursor ..
              "); paging stopped instead of looping",
    status = meta.status, request_id = meta.request_id, attempts = meta.attempts,
    waited = meta.waited,
  }, error_mt)
end

-- Returns the iterator of pages: (page, meta) per call, nil at the end.
local function pages(client, operations, error_mt, fname, name, ...)
  local op = paged_operation(operations, fname, name)
  local npath = 0
  for _, p in ipairs(op.params) do
    if p["in"] == "path" then npath = npath + 1 end
  end
  local args = { ... }
  if args[npath + 1] ~= nil and type(args[npath + 1]) ~= "table" then
    argerror(fname, "params must be a table, got " .. type(args[npath + 1]), npath + 2)
  end
  -- By value: the caller may change their tables while we iterate.
  local params = copy(args[npath + 1]) or {}
  local opts = copy(args[npath + 2])
  if opts and type(opts.headers) == "table" then opts.headers = copy(opts.headers) end
  local method, key, cursor_paging = op.name, op.list_key, op.paged == "cursor"
  local seen, done = {}, false
  local offset = tonumber(params.offset) or 0

  return function()
    if done then return nil end
    args[npath + 1], args[npath + 2] = params, opts
    local page, meta = client[method](client, unpack(args, 1, npath + 2))
    local items = type(page) == "table" and page[key]
    local count = type(items) == "table" and #items or 0
    if count == 0 then
      done = true
    elseif cursor_paging then
      local cursor = page.next_cursor
      if type(cursor) ~= "string" or cursor == "" then
        done = true
      elseif seen[cursor] then
        error(repeated_cursor(error_mt, meta, cursor), 0)
      else
        seen[cursor] = true
        params.cursor = cursor
      end
    elseif page.has_more ~= true then
      done = true
    else
      offset = offset + count
      params.offset = offset
    end
    return page, meta
  end
end

local function each(client, operations, error_mt, fname, name, ...)
  local next_page = pages(client, operations, error_mt, fname, name, ...)
  local key = operations[name].list_key
  local page, meta, items, i
  return function()
    while true do
      if items then
        i = i + 1
        local item = items[i]
        if item ~= nil then return item, page, meta end
      end
      page, meta = next_page()
      if page == nil then return nil end
      items = type(page[key]) == "table" and page[key] or {}
      i = 0
    end
  end
end

-- Adds pages and each to a client's methods; operations is a private copy of
-- linq.operations, error_mt the metatable of linq's errors.
function M.install(methods, operations, error_mt)
  methods.pages = function(self, name, ...)
    return pages(self, operations, error_mt, "pages", name, ...)
  end
  methods.each = function(self, name, ...)
    return each(self, operations, error_mt, "each", name, ...)
  end
end

-- For fronts that check their own arguments: the same iterators.
M.pages, M.each = pages, each

return M
