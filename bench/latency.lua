-- Many calls at once (issue 12): wall-clock time of 8 and 64 calls against a simulator
-- that answers every request after 50 ms, made in sequence, with client:all and with
-- the official Node SDK's Promise.all; and the client's instructions per call of
-- client:all against a sequential loop (callgrind).  Run by bench/run under its own
-- sim/with-sim, or by hand from the repository root:
--
--   LUA_PATH='./lua/?.lua;;' LUA_CPATH='./build/lua5.4/?.so;;' NO_PROXY=127.0.0.1 \
--     sim/with-sim --workers 2 lua5.4 bench/latency.lua [OUTDIR]
--
-- OUTDIR (default build/bench) gets latency.tsv (one line per scenario: every run's
-- wall-clock and CPU ms), latency_node.err and, from bench/callgrind.lua measure-all,
-- callgrind_all.tsv, callgrind_all_profile.txt and callgrind_all/.  Prints the section
-- and whether each target is met (bench/report.lua prints it again with the rest).
-- Settings (environment):
--   BENCH_LATENCY_RUNS=7        timed runs of every scenario (after one warm-up run)
--   BENCH_LATENCY_MS=50         the simulator's delay (mode slow/<MS>)
--   BENCH_SKIP_NODE=1           leave out the Node SDK (bench/latency_node.js)
--   BENCH_NODE_DIR=dir          where bench/run installed @linqapp/sdk
--   BENCH_SKIP_CALLGRIND=1      leave out the instruction counts
--   BENCH_CALLGRIND_BATCHES=5   B for the counts: runs of 1+B and 1+2B batches of 64 calls
--
-- bench/report.lua loads this file with loadfile(...)("__report") and gets the
-- function that turns OUTDIR's files into tables and targets.
local ROUND_TARGET = 1.3  -- 8 calls within 1.3 x one round trip; 64 (16 at once) within 1.3 x 4

local SCENARIOS = {
  -- id, calls, rounds (round trips the calls need at best), text
  { id = "linq_one", n = 1, rounds = 1, what = "linq: client:phone_numbers() alone (one round trip)" },
  { id = "node_one", n = 1, rounds = 1, what = "Node SDK: await phoneNumbers.list() alone" },
  { id = "raw_one", n = 1, rounds = 1, what = "floor: raw sockets, one GET alone" },
  { id = "linq_seq8", n = 8, rounds = 8, what = "linq: a loop of client:phone_numbers()" },
  { id = "linq_all8", n = 8, rounds = 1, what = "linq: client:all(calls) (default concurrency 8)",
    target = 1 },
  { id = "node_all8", n = 8, rounds = 1, what = "Node SDK: Promise.all of 8 phoneNumbers.list()" },
  { id = "raw_par8", n = 8, rounds = 1, what = "floor: raw sockets, 8 GETs at once on 8 connections" },
  { id = "linq_seq64", n = 64, rounds = 64, what = "linq: a loop of client:phone_numbers()" },
  { id = "linq_all64_c16", n = 64, rounds = 4, what = "linq: client:all(calls, { concurrency = 16 })",
    target = 4 },
  { id = "node_all64_c16", n = 64, rounds = 4, what = "Node SDK: Promise.all, at most 16 at once" },
  { id = "raw_par64_c16", n = 64, rounds = 4, what = "floor: raw sockets, 16 connections, 4 GETs each" },
  { id = "linq_all64_c64", n = 64, rounds = 1, what = "linq: client:all(calls, { concurrency = 64 })" },
  { id = "node_all64", n = 64, rounds = 1, what = "Node SDK: Promise.all, no limit (64 at once)" },
  { id = "raw_par64_c64", n = 64, rounds = 1, what = "floor: raw sockets, 64 GETs at once on 64 connections" },
}

local function read(path)
  local f = io.open(path)
  if not f then return nil end
  local s = f:read("a")
  f:close()
  return s
end

local function median(t)
  if #t == 0 then return nil end
  local s = {}
  for i, v in ipairs(t) do s[i] = v end
  table.sort(s)
  local m = math.floor((#s + 1) / 2)
  if #s % 2 == 1 then return s[m] end
  return (s[m] + s[m + 1]) / 2
end

local function numbers(list)
  local t = {}
  for v in (list or ""):gmatch("[^,]+") do t[#t + 1] = tonumber(v) end
  return t
end

local function fint(x)
  if not x then return "-" end
  local s = string.format("%.0f", x)
  local sign, digits = s:match("^(%-?)(%d+)$")
  return sign .. digits:reverse():gsub("(%d%d%d)", "%1,"):reverse():gsub("^,", "")
end
local function f1(x) return x and string.format("%.1f", x) or "-" end
local function f2(x) return x and string.format("%.2f", x) or "-" end
local function f3(x) return x and string.format("%.3f", x) or "-" end

-- The section, from OUTDIR's files: { tables, targets, notes, summary, command }.
local function report(dir, read_file)
  read_file = read_file or read
  local out = { tables = {}, notes = {}, summary = {} }
  local text = read_file(dir .. "/latency.tsv")
  if not text then
    local why = read_file(dir .. "/latency.note") or "not measured"
    out.tables[1] = { title = "many calls at once", head = { "" }, rows = { { (why:gsub("%s+$", "")) } } }
    return out
  end
  local meta, got, notes = {}, {}, {}
  for line in text:gmatch("[^\n]+") do
    local id, rest = line:match("^([^\t]+)\t(.*)$")
    if id == "meta" then
      for k, v in rest:gmatch("([%w_]+)=([^\t]+)") do meta[k] = v end
    elseif id and rest:find("^wall=") then
      local wall, cpu = numbers(rest:match("wall=([^\t]*)")), numbers(rest:match("cpu=([^\t]*)"))
      local conns = numbers(rest:match("conns=([^\t]*)"))
      local lo, hi = math.huge, -math.huge
      for _, v in ipairs(wall) do lo, hi = math.min(lo, v), math.max(hi, v) end
      local opened = 0
      for _, v in ipairs(conns) do opened = opened + v end
      got[id] = { wall = median(wall), min = lo, max = hi, cpu = median(cpu), runs = #wall,
        conns = #conns > 0 and opened / #conns or nil }
    elseif id then
      notes[id] = rest
    end
  end
  -- One round trip: one sequential call's time, the median over the runs of the 64-call
  -- loop's time / 64 (steadier than one call timed alone, which is shown too).
  local rt = got.linq_seq64 and got.linq_seq64.wall / 64 or (got.linq_one or {}).wall
  local rows = {}
  for _, s in ipairs(SCENARIOS) do
    local g = got[s.id]
    local owner = s.id:match("^(%a+)_")
    if g then
      local ideal = rt and rt * s.rounds
      rows[#rows + 1] = { tostring(s.n), s.what, f1(g.wall), f1(g.min), f1(g.max), f2(rt and g.wall / rt),
        tostring(s.rounds), f2(ideal and g.wall / ideal), f3(g.cpu and g.cpu / s.n),
        g.conns and string.format("%.1f", g.conns) or "-" }
    elseif notes[s.id] or notes[owner] then
      rows[#rows + 1] = { tostring(s.n), s.what, notes[s.id] or notes[owner] }
    end
  end
  out.tables[#out.tables + 1] = {
    title = string.format("many calls at once: wall-clock ms, the simulator answering every request after %s ms "
      .. "(%s), median of %s runs after a warm-up run", meta.delay_ms or "?", meta.mode or "?", meta.runs or "?"),
    head = { "calls", "client", "median ms", "min", "max", "x one round trip", "round trips at best",
      "x ideal", "client CPU ms/call", "connections opened per run" },
    rows = rows, left = 2,
  }

  -- Instructions per call (bench/callgrind.lua measure-all).
  local cg = {}
  for line in (read_file(dir .. "/callgrind_all.tsv") or ""):gmatch("[^\n]+") do
    local client, kind, rest = line:match("^([^\t]+)\t([^\t]+)\t(.*)$")
    if client then
      local f = {}
      for k, v in rest:gmatch("([%w_]+)=(%S+)") do f[k] = tonumber(v) or v end
      cg[client .. "/" .. kind] = f
    end
  end
  if next(cg) then
    local function ir(k) return (cg[k] or {}).ir end
    local crows = {}
    for _, c in ipairs({ { "linq54", "linq, Lua 5.4" }, { "linqjit", "linq, LuaJIT" } }) do
      local seq, kept, all = ir(c[1] .. "/seq"), ir(c[1] .. "/seq-kept"), ir(c[1] .. "/all")
      crows[#crows + 1] = { c[2], fint(seq), fint(kept), fint(all), f2(seq and all and all / seq),
        f2(kept and all and all / kept) }
    end
    if ir("raw/seq") then
      crows[#crows + 1] = { "raw libcurl (C, one easy handle)", fint(ir("raw/seq")), "-", "-", "-", "-" }
    end
    local any = next(cg)
    local f = cg[any]
    out.tables[#out.tables + 1] = {
      title = string.format("many calls at once: instructions per call, client side, 64 calls of "
        .. "phone_numbers() against api/partner (no delay); callgrind: (Ir of 1+2B batches - Ir of 1+B) "
        .. "/ (64 B), B = %s", tostring(f.batches or "?")),
      head = { "client", "64 in a loop", "64 in a loop, results kept", "client:all, concurrency 16",
        "all / loop", "all / loop kept" },
      rows = crows, left = 1,
    }
  else
    local why = meta.callgrind or notes.callgrind or "not measured"
    out.tables[#out.tables + 1] = { title = "many calls at once: instructions per call (callgrind)",
      head = { "" }, rows = { { why } } }
  end

  -- Targets.
  local trows = {}
  for _, s in ipairs(SCENARIOS) do
    if s.target then
      local g = got[s.id]
      local r = g and rt and g.wall / (rt * s.target)
      local ok = r and r <= ROUND_TARGET
      trows[#trows + 1] = {
        string.format("%d calls, %s / (%d x one round trip)", s.n, s.what:gsub("^linq: ", ""), s.target),
        r and string.format("%.2f (%.1f / %.1f ms)", r, g.wall, rt * s.target) or "-",
        "<= " .. ROUND_TARGET,
        r == nil and "not measured" or (ok and "met" or "NOT met") }
      out.summary[#out.summary + 1] = string.format("many calls at once, %d calls via client:all: %s",
        s.n, r and string.format("%.2f x %s (%s; wanted <= %.1f)", r,
          s.target == 1 and "one round trip" or (s.target .. " round trips"), ok and "met" or "NOT met",
          ROUND_TARGET) or "not measured")
    end
  end
  -- The issue's third target: CPU per call no worse than sequential calls.
  local seq, all = (cg["linq54/seq"] or {}).ir, (cg["linq54/all"] or {}).ir
  if seq and all then
    local ok = all <= seq
    trows[#trows + 1] = { "CPU per call: client:all / a loop of calls (instructions, Lua 5.4)",
      string.format("%.2f (%s / %s)", all / seq, fint(all), fint(seq)), "<= 1.00",
      ok and "met" or "NOT met" }
    out.summary[#out.summary + 1] = string.format("many calls at once, CPU per call: %.2f x a loop (%s)",
      all / seq, ok and "met" or "NOT met; wanted <= 1.00")
  end
  out.targets = { title = "targets, many calls at once", head = { "target", "measured", "wanted", "" },
    rows = trows }

  out.notes[#out.notes + 1] = string.format("many calls at once: one round trip = one sequential call's "
    .. "time, the median over the runs of the 64-call loop's time / 64 (%s ms); every call returns the "
    .. "2-number list; \"round trips at best\" = ceil(calls / calls at once), \"x ideal\" = median / "
    .. "(round trips at best x one round trip). floor = the same GETs written by hand on kept-alive "
    .. "LuaSocket connections, one in flight per connection, cjson.decode of each reply: the least any "
    .. "client waits with this simulator on this machine. Wall-clock from a monotonic clock "
    .. "(bench/clock.c, process.hrtime in Node); client CPU = the client process's user + system time "
    .. "(getrusage, process.cpuUsage) / calls, coarse (the kernel's tick accounting; read the "
    .. "instruction counts for CPU). connections opened per run: the client process's sockets "
    .. "(/proc/<pid>/fd) that were not there after the previous run, the mean over the runs; 0 when every "
    .. "call reused a kept-alive connection. %s.", f2(rt), meta.lua or "Lua ?")
  if meta.placement then out.notes[#out.notes + 1] = "many calls at once: " .. meta.placement end
  if notes.node then out.notes[#out.notes + 1] = "many calls at once, Node SDK: " .. notes.node end
  out.command = "LUA_PATH='./lua/?.lua;;' LUA_CPATH='./build/lua5.4/?.so;;' NO_PROXY=127.0.0.1 "
    .. "sim/with-sim --workers 2 lua5.4 bench/latency.lua"
  return out
end

if ... == "__report" then return report end

-- ---------------------------------------------------------------- measuring
local outdir = ... or "build/bench"
local url = assert(os.getenv("LINQ_SIM_URL"), "run under sim/with-sim")
local key = assert(os.getenv("LINQ_SIM_KEY"))
local runs = tonumber(os.getenv("BENCH_LATENCY_RUNS") or 7)
local delay = tonumber(os.getenv("BENCH_LATENCY_MS") or 50)
local mode = "slow/" .. delay
assert(runs and runs >= 1 and delay and delay >= 0, "bad BENCH_LATENCY_RUNS or BENCH_LATENCY_MS")
local function say(...) io.stderr:write("bench: latency: ", string.format(...), "\n") end
local function q(s) return "'" .. tostring(s):gsub("'", "'\\''") .. "'" end
assert(os.execute("mkdir -p " .. q(outdir)))

-- The monotonic clock: bench/clock.c (bench/run builds it into OUTDIR/<lua>/); built
-- here when missing, so that the command above works after a plain `make`.
local flavour = jit and "luajit" or "lua5.4"
local ok, clock = pcall(require, "benchclock")
if not ok then
  local dir = outdir .. "/" .. flavour
  local so = dir .. "/benchclock.so"
  if not io.open(so) then
    say("building %s", so)
    assert(os.execute(string.format("mkdir -p %s && ${CC:-cc} -O2 -Wall -shared -fPIC -o %s bench/clock.c "
      .. "$(pkg-config --cflags %s)", q(dir), q(so), flavour)), "could not build bench/clock.c")
  end
  package.cpath = dir .. "/?.so;" .. package.cpath
  clock = require("benchclock")
end
local wall, cpu = clock.wall, clock.cpu

local linq = require("linq")
local client = linq.new{ api_key = key, base_url = url .. "/" .. mode }

local function check(r)
  assert(type(r) == "table" and type(r.phone_numbers) == "table" and #r.phone_numbers > 0,
    "unexpected reply")
end
local function check_all(results, n)
  assert(#results == n, "expected " .. n .. " results")
  for i = 1, n do
    local r = results[i]
    if not r.ok then error(string.format("call %d of %d failed: %s", i, n, tostring(r.err)), 0) end
    check(r.res)
  end
end

local function list(n)
  local calls = {}
  for i = 1, n do calls[i] = { "phone_numbers" } end
  return calls
end
local calls8, calls64 = list(8), list(64)
local C16, C64 = { concurrency = 16 }, { concurrency = 64 }

local RUN = {
  linq_one = function() check(client:phone_numbers()) end,
  linq_seq8 = function() for _ = 1, 8 do check(client:phone_numbers()) end end,
  linq_all8 = function() check_all(client:all(calls8), 8) end,
  linq_seq64 = function() for _ = 1, 64 do check(client:phone_numbers()) end end,
  linq_all64_c16 = function() check_all(client:all(calls64, C16), 64) end,
  linq_all64_c64 = function() check_all(client:all(calls64, C64), 64) end,
}
local ORDER = { "linq_one", "linq_seq8", "linq_all8", "linq_seq64", "linq_all64_c16", "linq_all64_c64" }

-- The floor: the same GETs written by hand on kept-alive LuaSocket connections (one
-- request in flight per connection; the next is sent when the reply's Content-Length
-- bytes are in), replies read with socket.select and decoded with cjson: what any
-- client needs at the least, with this simulator on this machine.
local has_socket, socket = pcall(require, "socket")
if has_socket then
  local cjson = require("cjson")
  local host, port = url:match("^http://([^:/]+):(%d+)")
  local req = string.format("GET /%s/v3/phone_numbers HTTP/1.1\r\nHost: %s:%s\r\nAuthorization: Bearer %s\r\n"
    .. "Accept: application/json\r\n\r\n", mode, host, port, key)
  local conns = {}
  local function conn(i)
    if not conns[i] then
      local s = assert(socket.tcp())
      assert(s:connect(host, tonumber(port)))
      s:setoption("tcp-nodelay", true)
      s:settimeout(0)
      conns[i] = s
    end
    return conns[i]
  end
  -- n GETs over k connections.
  local function par(n, k)
    local sent, done, buf, readers = 0, 0, {}, {}
    local function send(s)
      sent = sent + 1
      buf[s] = ""
      local last, err = s:send(req)
      assert(last == #req, "raw send: " .. tostring(err))
    end
    for i = 1, math.min(n, k) do
      local s = conn(i)
      readers[i] = s
      send(s)
    end
    while done < n do
      local ready = socket.select(readers, nil, 10)
      assert(#ready > 0, "raw: no reply within 10 s")
      for _, s in ipairs(ready) do
        local data, err, partial = s:receive(65536)
        data = data or partial
        if (data == nil or data == "") and err == "closed" then error("raw: connection closed", 0) end
        local b = buf[s] .. (data or "")
        buf[s] = b
        local head_end = b:find("\r\n\r\n", 1, true)
        local len = head_end and tonumber(b:sub(1, head_end):lower():match("\ncontent%-length:%s*(%d+)"))
        if len and #b >= head_end + 3 + len then
          assert(b:find("^HTTP/1%.1 200 "), "raw: not 200: " .. b:sub(1, 40))
          check(cjson.decode(b:sub(head_end + 4, head_end + 3 + len)))
          done = done + 1
          if sent < n then send(s) else buf[s] = nil end
        end
      end
    end
  end
  RUN.raw_one = function() par(1, 1) end
  RUN.raw_par8 = function() par(8, 8) end
  RUN.raw_par64_c16 = function() par(64, 16) end
  RUN.raw_par64_c64 = function() par(64, 64) end
  for _, id in ipairs({ "raw_one", "raw_par8", "raw_par64_c16", "raw_par64_c64" }) do ORDER[#ORDER + 1] = id end
end

local samples = {}
for _, id in ipairs(ORDER) do samples[id] = { wall = {}, cpu = {}, conns = {} } end
say("%s, %d runs of: 1 call, 8 in a loop, 8 via all, 64 in a loop, 64 via all (16 and 64 at once)%s", mode, runs,
  has_socket and ", and the same on raw sockets" or "")
-- The process's TCP sockets (inodes, from /proc/<pid>/fd): a socket that appears
-- during a run is a connection the run opened (a kept-alive one was not reused).
local pid = (read("/proc/self/stat") or ""):match("^(%d+)")
local function sockets()
  if not pid then return nil end
  local p = io.popen("ls -l /proc/" .. pid .. "/fd 2>/dev/null")
  local set = {}
  for inode in p:read("a"):gmatch("socket:%[(%d+)%]") do set[inode] = true end
  p:close()
  return set
end

for _, id in ipairs(ORDER) do if not id:find("seq") then RUN[id]() end end  -- warm-up: connections made
local before = sockets()
for _ = 1, runs do
  for _, id in ipairs(ORDER) do
    collectgarbage()
    local c0, t0 = cpu(), wall()
    RUN[id]()
    local t1, c1 = wall(), cpu()
    local s = samples[id]
    s.wall[#s.wall + 1] = string.format("%.3f", (t1 - t0) * 1e3)
    s.cpu[#s.cpu + 1] = string.format("%.3f", (c1 - c0) * 1e3)
    local after = sockets()
    if after then
      local new = 0
      for inode in pairs(after) do if not before[inode] then new = new + 1 end end
      s.conns[#s.conns + 1] = tostring(new)
      before = after
    end
  end
end

local lines = {}
if not has_socket then lines[#lines + 1] = "raw\tskipped: LuaSocket is not installed" end
local placement = os.getenv("BENCH_CPU_NOTE")
table.insert(lines, 1, string.format("meta\tmode=%s\tdelay_ms=%d\truns=%d\tlua=%s%s%s", mode, delay, runs,
  jit and jit.version or _VERSION, placement and "\tplacement=" or "", placement or ""))
for _, id in ipairs(ORDER) do
  lines[#lines + 1] = string.format("%s\twall=%s\tcpu=%s\tconns=%s", id, table.concat(samples[id].wall, ","),
    table.concat(samples[id].cpu, ","), table.concat(samples[id].conns, ","))
end

-- The Node SDK, in its own process.
local function has(cmd) return os.execute("command -v " .. cmd .. " >/dev/null 2>&1") end
local node_dir = os.getenv("BENCH_NODE_DIR") or ((os.getenv("TMPDIR") or "/tmp") .. "/linq-bench-node")
local failed = false
if os.getenv("BENCH_SKIP_NODE") == "1" then
  lines[#lines + 1] = "node\tskipped (BENCH_SKIP_NODE=1)"
elseif not has("node") then
  lines[#lines + 1] = "node\tskipped: node is not installed"
elseif not io.open(node_dir .. "/node_modules/@linqapp/sdk/package.json") then
  lines[#lines + 1] = "node\tskipped: @linqapp/sdk is not installed in " .. node_dir .. " (bench/run installs it)"
else
  say("Node SDK, %d runs of: 1 call, 8 via Promise.all, 64 (16 at once), 64 (no limit)", runs)
  local err = outdir .. "/latency_node.err"
  local p = assert(io.popen(string.format("BENCH_NODE_DIR=%s node bench/latency_node.js %d %s 2>%s",
    q(node_dir), runs, q(mode), q(err))))
  local text = p:read("a")
  local closed = p:close()
  local n = 0
  for line in text:gmatch("[^\n]+") do
    if line:find("^node_[%w_]+\twall=") then
      lines[#lines + 1] = line
      n = n + 1
    end
  end
  if not closed or n == 0 then
    lines[#lines + 1] = "node\tfailed (see " .. err .. ")"
    say("the Node SDK FAILED (see %s)", err)
    failed = true
  end
end

-- Instructions per call: bench/callgrind.lua measure-all, against the fast mode.
if os.getenv("BENCH_SKIP_CALLGRIND") == "1" then
  lines[#lines + 1] = "callgrind\tskipped (BENCH_SKIP_CALLGRIND=1)"
  os.remove(outdir .. "/callgrind_all.tsv")
elseif not has("valgrind") or not has("callgrind_annotate") then
  lines[#lines + 1] = "callgrind\tskipped: valgrind is not installed"
  os.remove(outdir .. "/callgrind_all.tsv")
else
  local batches = tonumber(os.getenv("BENCH_CALLGRIND_BATCHES") or 5)
  if not os.execute(string.format("lua5.4 bench/callgrind.lua measure-all %s %s %d", q(outdir),
    q(url .. "/api/partner"), batches)) then
    say("callgrind FAILED")
    failed = true
  end
end

local f = assert(io.open(outdir .. "/latency.tsv", "w"))
f:write(table.concat(lines, "\n"), "\n")
f:close()

-- The section as text, with the targets.
local sec = report(outdir)
local function text_table(t)
  local w = {}
  for i, h in ipairs(t.head) do w[i] = #h end
  for _, r in ipairs(t.rows) do
    for i, c in ipairs(r) do
      if #r == #t.head or i < #r then w[i] = math.max(w[i] or 0, #c) end  -- a short row's last cell spans
    end
  end
  local function line(r)
    local o = {}
    for i = 1, #t.head do
      local c = r[i] or ""
      local pad = string.rep(" ", math.max(0, w[i] - #c))
      o[i] = (i <= (t.left or 1) or (#r < #t.head and i == #r)) and (c .. pad) or (pad .. c)
    end
    return (table.concat(o, "  "):gsub("%s+$", ""))
  end
  local dash = {}
  for i = 1, #t.head do dash[i] = string.rep("-", w[i]) end
  local o = { t.title, line(t.head), table.concat(dash, "  ") }
  for _, r in ipairs(t.rows) do o[#o + 1] = line(r) end
  return table.concat(o, "\n")
end
for _, t in ipairs(sec.tables) do io.write(text_table(t), "\n\n") end
io.write(text_table(sec.targets), "\n\n")
for _, n in ipairs(sec.notes) do io.write(n, "\n") end
for _, s in ipairs(sec.summary) do io.write(s, "\n") end
if failed then os.exit(1) end
