--- client:all and client:each_result: many calls at once, each exactly as if it ran
-- alone (its own timeout, retries, idempotency key and meta).  Every entry is
-- checked and staged by the C core before any traffic (core._stage: the same
-- checks as the methods, building an exchange instead of calling); the C batch
-- (src/batch.c) runs them over libcurl's multi interface.  Inside nginx,
-- lua/linq/nginx.lua installs its own versions over cosockets, with this file's
-- checks and results.
local stage_all = require("linq.core")._stage_all

local M = {}

local pcall, type, rawget, error, format = pcall, type, rawget, error, string.format

M.DEFAULT_CONCURRENCY = 8
M.MAX_CONCURRENCY = 256

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
-- any traffic, naming the entry.  Entries are read once, with raw access (in C:
-- core._stage_all).
function M.stage_all(fname, client, calls, stage)
  local staged = stage_all(fname, client, calls, stage)
  return staged, #staged
end

-- An error that is not a linq error (out of memory, the interpreter's Ctrl-C) is not a
-- call's failure: it is raised.
function M.result(ex)
  local ok, res, meta = pcall(ex.result, ex)
  if ok then return { ok = true, res = res, meta = meta } end
  if type(res) ~= "table" then error(res, 0) end
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
    if not batch then return {} end
    return batch:collect(client, staged)  -- results made in C, as result() makes them
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
