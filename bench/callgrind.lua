-- Instructions per call, client side, from valgrind's callgrind (run by bench/run,
-- under sim/with-sim).  Two roles, and two more for client:all (measure-all and
-- run-many, described where they are handled below; bench/latency.lua runs them):
--
--   lua5.4 bench/callgrind.lua measure OUTDIR BASE CHAT_ID [N]
--     For every client and call below, runs the client twice under
--     `valgrind --tool=callgrind`: WARMUP + N calls, then WARMUP + 2N calls.  The
--     difference of the two totals / N is the cost of one call in a warm client;
--     start-up, `require`, connecting and the warm-up cancel out.  BASE is the
--     simulator URL with its mode (e.g. http://127.0.0.1:PORT/ns/bench-123): every
--     client calls BASE/v3/phone_numbers, BASE/v3/chats/CHAT_ID and
--     BASE/v3/chats?limit=20.  Writes OUTDIR/callgrind.tsv (one line per client and
--     call: name, call, Ir per call, body bytes, N, the two totals) and
--     OUTDIR/callgrind_profile.txt (per function, inclusive Ir per call of the
--     module's calls under Lua 5.4, from callgrind_annotate --inclusive=yes over
--     the two runs); the raw callgrind files stay in OUTDIR/callgrind/.
--     N defaults to BENCH_CALLGRIND_CALLS or 500.
--
--   lua5.4|luajit bench/callgrind.lua run CALL BASE CHAT_ID CALLS
--     What runs under valgrind for the module: linq.new on BASE, one checked
--     call, then CALLS more calls of client:phone_numbers(),
--     client:get_chat(CHAT_ID) or client:list_chats{ limit = 20 }.
local WARMUP = 20

local role = arg[1]

-- The module's three calls; `check` validates the first reply.
local CALLS = {
  phone_numbers = {
    path = "/v3/phone_numbers",
    make = function(client) return function() return (client:phone_numbers()) end end,
    check = function(r) return type(r.phone_numbers) == "table" and #r.phone_numbers > 0 end,
  },
  get_chat = {
    path = "/v3/chats/%s",
    make = function(client, id) return function() return (client:get_chat(id)) end end,
    check = function(r, id) return r.id == id end,
  },
  list_chats = {
    path = "/v3/chats?limit=20",
    make = function(client)
      local params = { limit = 20 }
      return function() return (client:list_chats(params)) end
    end,
    check = function(r) return type(r.chats) == "table" and #r.chats > 0 end,
  },
}
local ORDER = { "phone_numbers", "get_chat", "list_chats" }

if role == "run" then
  local call_name, base, chat_id, n = arg[2], arg[3], arg[4], tonumber(arg[5])
  local spec = assert(CALLS[call_name], "unknown call " .. tostring(call_name))
  assert(base and chat_id and n, "usage: callgrind.lua run CALL BASE CHAT_ID CALLS")
  local linq = require("linq")
  local client = linq.new{ api_key = assert(os.getenv("LINQ_SIM_KEY")), base_url = base }
  local call = spec.make(client, chat_id)
  assert(spec.check(call(), chat_id), call_name .. ": unexpected first reply")
  for _ = 1, n do call() end
  io.write("calls=", n, "\n")
  return
end

-- lua5.4|luajit bench/callgrind.lua run-many KIND BASE BATCHES [SIZE [CONCURRENCY]]
--   What runs under valgrind for measure-all: linq.new on BASE, one checked batch,
--   then BATCHES more batches of SIZE (64) calls of client:phone_numbers(): KIND seq
--   makes them in a loop, seq-kept in a loop keeping every result as all does, KIND
--   all with client:all(calls, { concurrency = CONCURRENCY (16) }).
if role == "run-many" then
  local kind, base, batches = arg[2], arg[3], tonumber(arg[4])
  local size, conc = tonumber(arg[5] or 64), tonumber(arg[6] or 16)
  assert(base and batches and size and conc, "usage: callgrind.lua run-many seq|all BASE BATCHES [SIZE [CONCURRENCY]]")
  local linq = require("linq")
  local client = linq.new{ api_key = assert(os.getenv("LINQ_SIM_KEY")), base_url = base }
  local check = CALLS.phone_numbers.check
  local batch
  if kind == "all" then
    local calls, opts = {}, { concurrency = conc }
    for i = 1, size do calls[i] = { "phone_numbers" } end
    batch = function() return client:all(calls, opts) end
    local r = batch()
    for i = 1, size do assert(r[i] and r[i].ok and check(r[i].res), "all: unexpected result " .. i) end
  elseif kind == "seq-kept" then
    -- a loop that keeps every result, as a program that needs them all does
    batch = function()
      local results = {}
      for i = 1, size do
        local res, meta = client:phone_numbers()
        results[i] = { ok = true, res = res, meta = meta }
      end
      return results
    end
    batch()
  else
    assert(kind == "seq", "KIND is seq, seq-kept or all")
    batch = function()
      for _ = 1, size do client:phone_numbers() end
    end
    assert(check(client:phone_numbers()), "phone_numbers: unexpected first reply")
    batch()
  end
  for _ = 1, batches do batch() end
  io.write("calls=", batches * size, "\n")
  return
end

local function q(s) return "'" .. tostring(s):gsub("'", "'\\''") .. "'" end

local function read(path)
  local f = io.open(path)
  if not f then return nil end
  local s = f:read("a")
  f:close()
  return s
end

-- callgrind_annotate [--inclusive=yes] FILE -> { ["file:function [object]"] = Ir }
local function annotate(file, inclusive)
  local t = {}
  local p = assert(io.popen(string.format("callgrind_annotate --inclusive=%s --threshold=100 %s 2>/dev/null",
    inclusive and "yes" or "no", q(file))))
  for line in p:lines() do
    local num, fn = line:match("^%s*([%d,]+)%s+%([^)]*%)%s+(%S.*)$")
    if num and fn ~= "PROGRAM TOTALS" then
      t[fn] = (t[fn] or 0) + tonumber((num:gsub(",", "")))
    end
  end
  p:close()
  return t
end

-- (b - a) / n per key of two annotate results.
local function per_call(a, b, n)
  local d = {}
  for k, v in pairs(b) do d[k] = (v - (a[k] or 0)) / n end
  for k, v in pairs(a) do if b[k] == nil then d[k] = -v / n end end
  return d
end

-- The shared object of "file:function [/path/object]", by its short name.
local function object_of(fn)
  local obj = fn:match("%[([^%]]+)%]$")
  if not obj then return "(no object)" end
  obj = obj:match("([^/]+)$")
  if obj == "core.so" then return "linq/core.so (the module)" end
  return (obj:gsub("%.so[%.%d]*$", ".so"))
end

-- lua5.4 bench/callgrind.lua measure-all OUTDIR BASE [BATCHES]
--   Instructions per call of 64 calls of client:phone_numbers() made in a loop and
--   made by client:all(calls, { concurrency = 16 }) (bench/latency.lua runs it; BASE
--   is the fast mode, e.g. http://127.0.0.1:PORT/api/partner).  Each runs under
--   callgrind with 1 + B and 1 + 2B batches of 64 (B = BATCHES, default
--   BENCH_CALLGRIND_BATCHES or 5): (Ir difference) / (64 B) is one call in a warm
--   client, its connections made.  Raw libcurl (OUTDIR/raw_curl, when bench/run built
--   it) gives the sequential floor.  Writes OUTDIR/callgrind_all.tsv and
--   OUTDIR/callgrind_all_profile.txt (Lua 5.4: self Ir per call by object and by
--   function, and inclusive Ir of the module's and libcurl's entry points, loop and
--   all side by side); the callgrind files stay in OUTDIR/callgrind_all/.
if role == "measure-all" then
  local outdir, base = arg[2], arg[3]
  local batches = tonumber(arg[4] or os.getenv("BENCH_CALLGRIND_BATCHES") or 5)
  assert(outdir and base and batches and batches > 0, "usage: callgrind.lua measure-all OUTDIR BASE [BATCHES]")
  local key = assert(os.getenv("LINQ_SIM_KEY"), "run under sim/with-sim")
  local SIZE, CONC = 64, 16
  local dir = outdir .. "/callgrind_all"
  assert(os.execute("rm -rf " .. q(dir) .. " && mkdir -p " .. q(dir)))
  local env54 = "LUA_PATH='./lua/?.lua;;' LUA_CPATH='./build/lua5.4/?.so;;'"
  local envjit = "LUA_PATH='./lua/?.lua;;' LUA_CPATH='./build/luajit/?.so;;'"
  local function many(lua, kind)
    return function(b)
      return string.format("%s bench/callgrind.lua run-many %s %s %d %d %d", lua, kind, q(base), b, SIZE, CONC)
    end
  end
  local RUNS = {
    { id = "linq54", kind = "seq", env = env54, cmd = many("lua5.4", "seq"), profile = true },
    { id = "linq54", kind = "seq-kept", env = env54, cmd = many("lua5.4", "seq-kept") },
    { id = "linq54", kind = "all", env = env54, cmd = many("lua5.4", "all"), profile = true },
    { id = "linqjit", kind = "seq", env = envjit, cmd = many("luajit", "seq") },
    { id = "linqjit", kind = "seq-kept", env = envjit, cmd = many("luajit", "seq-kept") },
    { id = "linqjit", kind = "all", env = envjit, cmd = many("luajit", "all") },
  }
  if io.open(outdir .. "/raw_curl") then
    RUNS[#RUNS + 1] = { id = "raw", kind = "seq", env = "", cmd = function(b)
      return string.format("%s/raw_curl %s %s 0 0 %d", outdir, q(base .. "/v3/phone_numbers"), q(key), (1 + b) * SIZE)
    end }
  end
  local tsv = assert(io.open(outdir .. "/callgrind_all.tsv", "w"))
  local profiles, failed = {}, false
  for _, r in ipairs(RUNS) do
    io.stderr:write(string.format("bench: callgrind / %s / 64 calls, %s (1+%d and 1+%d batches)\n", r.id,
      r.kind == "all" and "client:all, concurrency 16"
        or r.kind == "seq-kept" and "in a loop, results kept" or "in a loop", batches, 2 * batches))
    local ok, err = pcall(function()
      local totals, files = {}, {}
      for i, b in ipairs({ batches, 2 * batches }) do
        local file = string.format("%s/%s-%s-%d.out", dir, r.id, r.kind, b)
        local log = file:gsub("%.out$", ".log")
        local cmd = string.format("env %s valgrind --tool=callgrind --callgrind-out-file=%s %s >%s 2>&1",
          r.env, q(file), r.cmd(b), q(log))
        local done = os.execute(cmd)
        local text = read(file)
        local total = text and (text:match("\ntotals:%s*(%d+)") or text:match("\nsummary:%s*(%d+)"))
        if not done or not total then error(string.format("%s %s failed, see %s", r.id, r.kind, log), 0) end
        totals[i], files[i] = tonumber(total), file
      end
      local calls = batches * SIZE
      tsv:write(string.format("%s\t%s\tir=%.0f batches=%d size=%d concurrency=%d total_a=%d total_b=%d\n",
        r.id, r.kind, (totals[2] - totals[1]) / calls, batches, SIZE, CONC, totals[1], totals[2]))
      if r.profile then
        profiles[#profiles + 1] = { kind = r.kind, per_call = (totals[2] - totals[1]) / calls,
          self = per_call(annotate(files[1], false), annotate(files[2], false), calls),
          incl = per_call(annotate(files[1], true), annotate(files[2], true), calls) }
      end
    end)
    if not ok then
      io.stderr:write("bench: ", tostring(err), "\n")
      tsv:write(string.format("%s\t%s\tfailed\n", r.id, r.kind))
      failed = true
    end
  end
  tsv:close()

  -- The profile: loop and all side by side, and all - loop.
  local out = {}
  local function short(fn)
    return (fn:gsub("^/[^:]*/(src/[%w_]+%.c:)", "%1"):gsub(" %[[^%]]*/([^/%]]+)%]$", " [%1]"))
  end
  local function block(title, names, get, limit)
    if #profiles < 2 then return end
    local a, b = profiles[1], profiles[2]
    table.sort(names, function(x, y)
      local dx, dy = math.abs(get(b, x) - get(a, x)), math.abs(get(b, y) - get(a, y))
      if dx ~= dy then return dx > dy end
      return x < y
    end)
    out[#out + 1] = table.concat({ title, a.kind, b.kind, b.kind .. " - " .. a.kind }, "\t")
    out[#out + 1] = string.format("total\t%.0f\t%.0f\t%+.0f", a.per_call, b.per_call, b.per_call - a.per_call)
    for i, name in ipairs(names) do
      if limit and i > limit then break end
      local va, vb = get(a, name), get(b, name)
      if math.abs(va) >= 20 or math.abs(vb) >= 20 then
        out[#out + 1] = string.format("%s\t%.0f\t%.0f\t%+.0f", short(name), va, vb, vb - va)
      end
    end
    out[#out + 1] = ""
  end
  local function keys(field, wanted)
    local names, seen = {}, {}
    for _, pr in ipairs(profiles) do
      for k in pairs(pr[field]) do
        if not seen[k] and (not wanted or wanted(k)) then seen[k] = true; names[#names + 1] = k end
      end
    end
    return names
  end
  -- Functions only: callgrind_annotate also prints call lines ("=> callee (Nx)") and
  -- annotated source lines, which are not self cost of their own.
  local function own(fn) return not fn:find("^=>") and fn:find("%S:%S.* %[[^%]]+%]$") ~= nil end
  for _, pr in ipairs(profiles) do
    pr.by_obj = {}
    for fn, v in pairs(pr.self) do
      if own(fn) then
        local o = object_of(fn)
        pr.by_obj[o] = (pr.by_obj[o] or 0) + v
      end
    end
  end
  block("self Ir per call, by object (linq Lua 5.4, 64 calls)", keys("by_obj"),
    function(pr, k) return pr.by_obj[k] or 0 end)
  block("self Ir per call, by function, the 40 that differ most", keys("self", own),
    function(pr, k) return pr.self[k] or 0 end, 40)
  block("inclusive Ir per call: the module's functions and libcurl's entry points", keys("incl", function(fn)
    return fn:find("^/[^:]*/src/[%w_]+%.c:[%w_]+$") or fn:find("^%?%?%?:curl_[%w_]+ %[") ~= nil
  end), function(pr, k) return pr.incl[k] or 0 end)
  local f = assert(io.open(outdir .. "/callgrind_all_profile.txt", "w"))
  f:write(table.concat(out, "\n"), "\n")
  f:close()
  if failed then os.exit(1) end
  return
end

assert(role == "measure",
  "usage: callgrind.lua measure OUTDIR BASE CHAT_ID [N] | measure-all OUTDIR BASE [BATCHES] | run ...")
local outdir, base, chat_id = arg[2], arg[3], arg[4]
local n = tonumber(arg[5] or os.getenv("BENCH_CALLGRIND_CALLS") or 500)
assert(outdir and base and chat_id and n and n > 0, "usage: callgrind.lua measure OUTDIR BASE CHAT_ID [N]")
local key = assert(os.getenv("LINQ_SIM_KEY"), "run under sim/with-sim")
local cg = outdir .. "/callgrind"
assert(os.execute("rm -rf '" .. cg .. "' && mkdir -p '" .. cg .. "'"))

local function url_of(call)
  return base .. CALLS[call].path:format(chat_id)
end

-- The clients: each gives the environment and the command line for `calls` calls
-- of `call` (valgrind runs the command itself, not `env`).
local lua54_env = "LUA_PATH='./lua/?.lua;;' LUA_CPATH='./build/lua5.4/?.so;;'"
local luajit_env = "LUA_PATH='./lua/?.lua;;' LUA_CPATH='./build/luajit/?.so;;'"
local CLIENTS = {
  { id = "raw", name = "raw libcurl (C, reused handle)", cmd = function(call, calls)
    return "", string.format("%s/raw_curl %s %s 0 0 %d", outdir, q(url_of(call)), q(key), calls)
  end },
  { id = "raw_cjson", name = "raw libcurl + cjson.decode (C + Lua 5.4)", cmd = function(call, calls)
    return "", string.format("%s/raw_curl_cjson %s %s 0 0 %d", outdir, q(url_of(call)), q(key), calls)
  end },
  { id = "raw_cjson_jit", name = "raw libcurl + cjson.decode (C + LuaJIT)", cmd = function(call, calls)
    return "", string.format("%s/raw_curl_cjson_jit %s %s 0 0 %d", outdir, q(url_of(call)), q(key), calls)
  end },
  { id = "linq54", name = "linq, Lua 5.4", profile = true, cmd = function(call, calls)
    return lua54_env, string.format("lua5.4 bench/callgrind.lua run %s %s %s %d", call,
      q(base), q(chat_id), calls)
  end },
  { id = "linqjit", name = "linq, LuaJIT", cmd = function(call, calls)
    return luajit_env, string.format("luajit bench/callgrind.lua run %s %s %s %d", call,
      q(base), q(chat_id), calls)
  end },
}

-- One run under callgrind; returns the total Ir and the output file.
local function callgrind(client, call, calls)
  local file = string.format("%s/%s-%s-%d.out", cg, client.id, call, calls)
  local log = file:gsub("%.out$", ".log")
  local env, cmd = client.cmd(call, calls)
  cmd = string.format("env %s valgrind --tool=callgrind --callgrind-out-file=%s %s >%s 2>&1",
    env, q(file), cmd, q(log))
  local ok = os.execute(cmd)
  local text = read(file)
  local total = text and (text:match("\ntotals:%s*(%d+)") or text:match("\nsummary:%s*(%d+)"))
  if not ok or not total then
    error(string.format("%s %s (%d calls) failed, see %s", client.id, call, calls, log), 0)
  end
  return tonumber(total), file
end

local function body_bytes(call)
  local p = io.popen(string.format("curl -s --noproxy '*' -o /dev/null -w '%%{size_download}' -H %s %s",
    q("Authorization: Bearer " .. key), q(url_of(call))))
  local s = p:read("a")
  p:close()
  return tonumber(s)
end

local tsv = assert(io.open(outdir .. "/callgrind.tsv", "w"))
local profiles = {}
local failed = false
for _, call in ipairs(ORDER) do
  local bytes = body_bytes(call)
  for _, client in ipairs(CLIENTS) do
    io.stderr:write(string.format("bench: callgrind / %s / %s (%d and %d calls)\n", client.name, call,
      WARMUP + n, WARMUP + 2 * n))
    local ok, err = pcall(function()
      local a, fa = callgrind(client, call, WARMUP + n)
      local b, fb = callgrind(client, call, WARMUP + 2 * n)
      tsv:write(string.format("%s\t%s\tir=%.0f bytes=%s n=%d total_a=%d total_b=%d\n", client.id, call,
        (b - a) / n, tostring(bytes), n, a, b))
      if client.profile then
        profiles[#profiles + 1] = { call = call, per_call = (b - a) / n,
          self = per_call(annotate(fa, false), annotate(fb, false), n),
          incl = per_call(annotate(fa, true), annotate(fb, true), n) }
      end
    end)
    if not ok then
      io.stderr:write("bench: ", tostring(err), "\n")
      tsv:write(string.format("%s\t%s\tfailed\n", client.id, call))
      failed = true
    end
  end
end
tsv:close()

-- The profile of the module's calls (Lua 5.4), the three calls side by side and
-- their differences from phone_numbers: first the self (exclusive) Ir per call of
-- each shared object, then the inclusive Ir per call of every function of the
-- module (linq/core.so) and of libcurl's entry points.  callgrind_annotate's
-- inclusive figure counts a recursive function once per level (names with 'N);
-- the figure of its non-recursive caller is the one to read.
local out = {}
local function block(title, rows_of)
  if #profiles == 0 then return end
  local head = { title }
  for _, pr in ipairs(profiles) do head[#head + 1] = pr.call end
  for i = 2, #profiles do head[#head + 1] = profiles[i].call .. " - " .. profiles[1].call end
  out[#out + 1] = table.concat(head, "\t")
  for _, r in ipairs(rows_of()) do
    local row = { r.name }
    for _, pr in ipairs(profiles) do row[#row + 1] = string.format("%.0f", r.get(pr)) end
    for i = 2, #profiles do
      row[#row + 1] = string.format("%+.0f", r.get(profiles[i]) - r.get(profiles[1]))
    end
    out[#out + 1] = table.concat(row, "\t")
  end
  out[#out + 1] = ""
end

block("self Ir per call, by object (linq Lua 5.4)", function()
  local objs, seen = {}, {}
  for _, pr in ipairs(profiles) do
    pr.by_obj = {}
    for fn, v in pairs(pr.self) do
      local o = object_of(fn)
      pr.by_obj[o] = (pr.by_obj[o] or 0) + v
      if not seen[o] then seen[o] = true; objs[#objs + 1] = o end
    end
  end
  table.sort(objs, function(x, y) return (profiles[1].by_obj[x] or 0) > (profiles[1].by_obj[y] or 0) end)
  local rows = { { name = "total", get = function(pr) return pr.per_call end } }
  for _, o in ipairs(objs) do
    local any = false
    for _, pr in ipairs(profiles) do if math.abs(pr.by_obj[o] or 0) >= 50 then any = true end end
    if any then rows[#rows + 1] = { name = o, get = function(pr) return pr.by_obj[o] or 0 end } end
  end
  return rows
end)

block("inclusive Ir per call (linq Lua 5.4)", function()
  local names, seen = {}, {}
  for _, pr in ipairs(profiles) do
    for fn, v in pairs(pr.incl) do
      -- callgrind_annotate 3.19 gives a function's inclusive cost on the line named
      -- by its absolute source path (without the object); for the stripped
      -- libraries, on the line of the symbol or address.
      local wanted = fn:find("^/[^:]*/src/[%w_]+%.c:[%w_]+$") or fn:find("^%?%?%?:curl_easy_[%w_]+ %[")
        or (fn:find("cjson[^%]]*%]$") and not fn:find("'%d+ %[") and v >= 1000)
      if wanted and not seen[fn] and math.abs(v) >= 1 then
        seen[fn] = true
        names[#names + 1] = fn
      end
    end
  end
  local first = profiles[1].incl
  table.sort(names, function(x, y)
    local vx, vy = first[x] or 0, first[y] or 0
    if vx ~= vy then return vx > vy end
    return x < y
  end)
  local rows = { { name = "total", get = function(pr) return pr.per_call end } }
  for _, fn in ipairs(names) do
    local name = fn:gsub("^/[^:]*/(src/[%w_]+%.c:)", "%1"):gsub(" %[[^%]]*/([^/%]]+)%]$", " [%1]")
    rows[#rows + 1] = { name = name,
      get = function(pr) return pr.incl[fn] or 0 end }
  end
  return rows
end)

local f = assert(io.open(outdir .. "/callgrind_profile.txt", "w"))
f:write(table.concat(out, "\n"), "\n")
f:close()
if failed then os.exit(1) end
