--- client:all and client:each_result: many calls at once, each exactly as if it ran
-- alone (its own timeout, retries, idempotency key and meta).  Every entry is
-- checked and staged by the C core before any traffic (core._stage: the same
-- checks as the methods, building an exchange instead of calling); the C batch
-- (src/batch.c) runs them over libcurl's multi interface.  Inside nginx,
-- lua/linq/nginx.lua installs its own versions over cosockets, with this file's
-- checks and results.
local M = {}

local unpack = table.unpack or unpack  -- luacheck: ignore 143
local pcall, type, rawget, rawlen, error, format = pcall, type, rawget, rawlen, error, string.format
rawlen = rawlen or function(t) return #t end  -- Lua 5.1 and LuaJIT without 5.2 mode

M.DEFAULT_CONCURRENCY = 8
M.MAX_CONCURRENCY = 256

local function misuse(fname, msg)
  error(format("bad argument #1 to '%s' (%s)", fname, msg), 0)
end

-- { concurrency = n } -> n, checked as every option is: by name, by type, by range.
function M.concurrency(fname, opts)
  if opts == nil then return M.DEFAULT_CONCURRENCY end
  if type(opts) ~= "table" then
    error(format("bad argument #2 to '%s' (table expected, got %s)", fname, type(opts)), 0)
  end
  for k in pairs(opts) do
    if k ~= "concurrency" then
      error(format("bad argument #2 to '%s' (unknown option '%s'; the option is 'concurrency')",
                   fname, tostring(k)), 0)
    end
  end
  local n = rawget(opts, "concurrency")
  if n == nil then return M.DEFAULT_CONCURRENCY end
  if type(n) ~= "number" or n ~= math.floor(n) or n < 1 or n > M.MAX_CONCURRENCY then
    error(format("bad argument #2 to '%s' (option 'concurrency' must be a whole number " ..
                 "from 1 to %d)", fname, M.MAX_CONCURRENCY), 0)
  end
  return n
end

-- Checks every entry and stages it with stage[name](client, args...); raises before
-- any traffic, naming the entry.  Entries are read once, with raw access.
function M.stage_all(fname, client, calls, stage)
  if type(calls) ~= "table" then
    misuse(fname, "a list of calls expected, got " .. type(calls))
  end
  local staged, n = {}, rawlen(calls)
  for i = 1, n do
    local entry = rawget(calls, i)
    if type(entry) ~= "table" then
      misuse(fname, format("calls[%d] must be a table { name, arguments... }, got %s", i,
                           type(entry)))
    end
    local name = rawget(entry, 1)
    local f = type(name) == "string" and rawget(stage, name)
    if not f then
      misuse(fname, format("calls[%d]: %s is not an operation of the client (all runs " ..
                           "operations and 'request')", i,
                           type(name) == "string" and ("'" .. name .. "'") or tostring(name)))
    end
    local ok, ex = pcall(f, client, unpack(entry, 2, rawlen(entry)))
    if not ok then misuse(fname, format("calls[%d], %s: %s", i, name, tostring(ex))) end
    staged[i] = ex
  end
  return staged, n
end

-- The result of one ended exchange, as `all` gives it.
function M.result(ex)
  local ok, res, meta = pcall(ex.result, ex)
  if ok then return { ok = true, res = res, meta = meta } end
  return { ok = false, err = res }
end

function M.install(methods, stage, new_batch)
  local result = M.result

  -- Runs the staged calls; yields (through on_end) each index as its call ends.
  local function start(fname, client, calls, opts)
    local concurrency = M.concurrency(fname, opts)
    local staged, n = M.stage_all(fname, client, calls, stage)
    if n == 0 then return staged, nil end
    return staged, new_batch(client, staged, concurrency)
  end

  function methods.all(client, calls, opts)
    local staged, batch = start("all", client, calls, opts)
    local results = {}
    if not batch then return results end
    while true do
      local i = batch:next(client)
      if i == nil then break end
      if i then results[i] = result(staged[i]) end  -- false: a second passed, go on
    end
    return results
  end

  function methods.each_result(client, calls, opts)
    local staged, batch = start("each_result", client, calls, opts)
    return function()
      if not batch then return nil end
      while true do
        local i = batch:next(client)
        if i == nil then
          batch = nil
          return nil
        end
        if i then return result(staged[i]), i end
      end
    end
  end
end

return M
