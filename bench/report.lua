-- Reads what bench/run measured in DIR (build/bench), prints the table and the
-- targets, and writes the same as Markdown to MD:   lua5.4 bench/report.lua DIR MD
local cjson = require("cjson")

local dir, md_path = arg[1], arg[2]
assert(dir and md_path, "usage: report.lua DIR MD")

local function read(path)
  local f = io.open(path)
  if not f then return nil end
  local s = f:read("a")
  f:close()
  return s
end

local function fields(s)
  local t = {}
  for k, v in s:gmatch("([%w_]+)=(%S+)") do t[k] = tonumber(v) or v end
  return t
end

-- Environment: key<TAB>value lines.
local env = {}
for line in (read(dir .. "/env.tsv") or ""):gmatch("[^\n]+") do
  local k, v = line:match("^([^\t]+)\t(.*)$")
  if k then env[k] = v end
end

-- Results: payload<TAB>client<TAB>calls=.. wall=.. cpu=.. bytes=..  (or a note).
local res = { small = {}, big = {}, chats = {} }
for line in (read(dir .. "/results.tsv") or ""):gmatch("[^\n]+") do
  local payload, client, rest = line:match("^([^\t]+)\t([^\t]+)\t(.*)$")
  if payload and res[payload] then
    local f = fields(rest)
    if f.calls and f.wall and f.cpu then
      res[payload][client] = { rate = f.calls / f.wall, cpu = f.cpu / f.calls, calls = f.calls,
        bytes = f.bytes, busy = f.cpu / f.wall }
    else
      res[payload][client] = { note = rest }
    end
  end
end

local CLIENTS = {
  { id = "linq54", name = "linq, Lua 5.4" },
  { id = "linqjit", name = "linq, LuaJIT" },
  { id = "raw", name = "raw libcurl (C, reused handle)" },
  { id = "raw_cjson", name = "raw libcurl + cjson.decode (C + Lua 5.4)" },
  { id = "raw_cjson_jit", name = "raw libcurl + cjson.decode (C + LuaJIT)" },
  { id = "socket", name = "LuaSocket + cjson, Lua 5.4" },
  { id = "node", name = "@linqapp/sdk" .. (env.sdk_version and " " .. env.sdk_version or "") .. ", Node" },
}

local function ratio(a, b) if a and b and b > 0 then return a / b end end
local function fx(x, fmt) return x and string.format(fmt or "%.2f", x) or "-" end
local function fcpu(s) -- seconds per call -> ms with sensible precision
  if not s then return "-" end
  local ms = s * 1e3
  if ms < 1 then return string.format("%.3f", ms) end
  if ms < 100 then return string.format("%.2f", ms) end
  return string.format("%.0f", ms)
end
local function mib(kb) return kb and string.format("%.1f MiB", kb / 1024) or "-" end

local PAYLOADS = {
  { id = "small", title = "small list (the reference's 2 numbers)" },
  { id = "big", title = "big list (10,000 numbers)" },
}

-- One table per payload: header row + rows of cells.
local tables = {}
for _, p in ipairs(PAYLOADS) do
  local r = res[p.id]
  local raw, floor, floor_jit = r.raw or {}, r.raw_cjson or {}, r.raw_cjson_jit or {}
  local body = raw.bytes or floor.bytes
  local head = { "client", "calls/s", "CPU ms/call", "client busy", "calls/s vs raw", "CPU vs raw" }
  if p.id == "big" then
    head[#head + 1] = "vs raw+cjson 5.4"
    head[#head + 1] = "vs raw+cjson LuaJIT"
  end
  local rows = {}
  for _, c in ipairs(CLIENTS) do
    local m = r[c.id]
    if m then
      local row
      if m.note then
        row = { c.name, m.note }
      else
        row = { c.name, fx(m.rate, "%.0f"), fcpu(m.cpu), string.format("%.0f %%", m.busy * 100),
          fx(ratio(m.rate, raw.rate)), fx(ratio(m.cpu, raw.cpu)) }
        if p.id == "big" then
          row[#row + 1] = fx(ratio(m.rate, floor.rate))
          row[#row + 1] = fx(ratio(m.rate, floor_jit.rate))
        end
      end
      rows[#rows + 1] = row
    end
  end
  tables[#tables + 1] = {
    title = string.format("%s, body %s bytes", p.title, body and tostring(body) or "?"),
    head = head, rows = rows,
  }
end

-- get_chat and list_chats, each against raw libcurl on the same URL.
local CHAT_CALLS = {
  { id = "get_chat", name = "get_chat(id)" },
  { id = "list_chats", name = "list_chats{ limit = 20 }" },
}
do
  local r = res.chats
  local rows = {}
  for _, call in ipairs(CHAT_CALLS) do
    local raw = r["raw_" .. call.id] or {}
    for _, c in ipairs({ { "linq54", "linq, Lua 5.4" }, { "linqjit", "linq, LuaJIT" },
      { "raw", "raw libcurl (C, reused handle), same URL" } }) do
      local m = r[c[1] .. "_" .. call.id]
      if m and m.note then
        rows[#rows + 1] = { call.name .. ": " .. c[2], m.note }
      elseif m then
        rows[#rows + 1] = { call.name .. ": " .. c[2], fx(m.rate, "%.0f"), fcpu(m.cpu),
          string.format("%.0f %%", m.busy * 100), fx(ratio(m.rate, raw.rate)), fx(ratio(m.cpu, raw.cpu)) }
      end
    end
  end
  if #rows > 0 then
    tables[#tables + 1] = {
      title = string.format("chat calls (%s, 1 chat), bodies: get_chat %s bytes, list_chats %s bytes",
        env.chat_ns or "?", env.bytes_get_chat or "?", env.bytes_list_chats or "?"),
      head = { "call: client", "calls/s", "CPU ms/call", "client busy", "calls/s vs raw", "CPU vs raw" },
      rows = rows,
    }
  end
end

-- Instructions per call (callgrind): client<TAB>call<TAB>ir=.. bytes=.. n=..
local cg = {}
for line in (read(dir .. "/callgrind.tsv") or ""):gmatch("[^\n]+") do
  local client, call, rest = line:match("^([^\t]+)\t([^\t]+)\t(.*)$")
  if client then
    cg[call] = cg[call] or {}
    cg[call][client] = fields(rest)
  end
end
local function ir(call, client) return ((cg[call] or {})[client] or {}).ir end
local CG_CALLS = {
  { id = "phone_numbers", name = "phone_numbers()" },
  { id = "get_chat", name = "get_chat(id)" },
  { id = "list_chats", name = "list_chats{ limit = 20 }" },
}
local function fint(x)
  if not x then return "-" end
  local s = string.format("%.0f", x)
  local sign, digits = s:match("^(%-?)(%d+)$")
  return sign .. digits:reverse():gsub("(%d%d%d)", "%1,"):reverse():gsub("^,", "")
end
if next(cg) then
  -- The module's count with the floor's difference between the replies taken
  -- out: linq(call) - floor(call) + floor(phone_numbers), against linq(phone_numbers).
  local function neutral(call, client, floor)
    local m, f, m0, f0 = ir(call, client), ir(call, floor), ir("phone_numbers", client), ir("phone_numbers", floor)
    if m and f and m0 and f0 then return (m - f + f0) / m0 end
  end
  local counts, ratios = {}, {}
  for _, c in ipairs(CG_CALLS) do
    local f = (cg[c.id] or {}).linq54 or (cg[c.id] or {}).raw or {}
    local m54, mjit = ir(c.id, "linq54"), ir(c.id, "linqjit")
    local floor, floor_jit = ir(c.id, "raw_cjson"), ir(c.id, "raw_cjson_jit")
    counts[#counts + 1] = { c.name, f.bytes and tostring(f.bytes) or "-", fint(ir(c.id, "raw")), fint(floor),
      fint(floor_jit), fint(m54), fint(mjit), (m54 and floor) and fint(m54 - floor) or "-",
      (mjit and floor_jit) and fint(mjit - floor_jit) or "-" }
    ratios[#ratios + 1] = { c.name, fx(ratio(m54, ir("phone_numbers", "linq54"))),
      fx(ratio(mjit, ir("phone_numbers", "linqjit"))), fx(ratio(floor, ir("phone_numbers", "raw_cjson"))),
      fx(ratio(floor_jit, ir("phone_numbers", "raw_cjson_jit"))), fx(neutral(c.id, "linq54", "raw_cjson")),
      fx(neutral(c.id, "linqjit", "raw_cjson_jit")), fx(ratio(ir(c.id, "raw"), m54)),
      fx(ratio(ir(c.id, "raw"), mjit)) }
  end
  tables[#tables + 1] = {
    title = string.format("instructions per call, client side (callgrind: (Ir of 20+2N calls - Ir of 20+N calls) / N, "
      .. "N = %s; %s)", env.callgrind_calls or "?", env.chat_ns or "?"),
    head = { "call", "body bytes", "raw libcurl", "floor 5.4 (raw libcurl + cjson)", "floor LuaJIT",
      "linq, Lua 5.4", "linq, LuaJIT", "5.4 above floor", "LuaJIT above floor" },
    rows = counts,
  }
  tables[#tables + 1] = {
    title = "instructions per call, ratios",
    head = { "call", "5.4 / phone_numbers", "LuaJIT / phone_numbers", "floor 5.4 / phone_numbers",
      "floor LuaJIT / phone_numbers", "5.4, JSON difference out", "LuaJIT, JSON difference out",
      "raw libcurl / 5.4", "raw libcurl / LuaJIT" },
    rows = ratios,
  }
elseif env.callgrind_note then
  tables[#tables + 1] = { title = "instructions per call (callgrind)", head = { "" },
    rows = { { env.callgrind_note } } }
end

-- Start-up: hyperfine's JSON, else the shell loop's TSV (name, mean ms, stddev ms).
local startup = {}
local hj = read(dir .. "/startup.json")
if hj then
  for _, r in ipairs(cjson.decode(hj).results) do
    startup[#startup + 1] = { name = r.command, mean = r.mean * 1e3, sd = r.stddev * 1e3 }
  end
else
  for line in (read(dir .. "/startup.tsv") or ""):gmatch("[^\n]+") do
    local n, m, s = line:match("^([^\t]+)\t([^\t]+)\t([^\t]+)$")
    if n then startup[#startup + 1] = { name = n, mean = tonumber(m), sd = tonumber(s) } end
  end
end
local bare, withlinq
for _, s in ipairs(startup) do
  if s.name == "lua5.4 bare" then bare = s.mean end
  if s.name == "lua5.4 + linq" then withlinq = s.mean end
end
local st_rows = {}
for _, s in ipairs(startup) do
  st_rows[#st_rows + 1] = { s.name, string.format("%.1f ± %.1f", s.mean, s.sd),
    bare and string.format("%+.1f", s.mean - bare) or "-" }
end
tables[#tables + 1] = {
  title = "start-up (" .. (hj and "hyperfine, warm-up 3, 30 runs" or "shell loop, 30 runs") .. ")",
  head = { "command", "ms", "ms vs bare lua5.4" }, rows = st_rows,
}

-- Peak memory: the module, and for comparison the same decode without HTTP.
local big_body = (res.big.raw or {}).bytes or (res.big.raw_cjson or {}).bytes
local function mem_row(name, file)
  local m = fields(read(dir .. "/" .. file) or "")
  local above = m.peak_kb and m.base_kb and (m.peak_kb - m.base_kb)
  local r = above and big_body and (above * 1024 / big_body)
  return { name, mib(m.base_kb), mib(m.peak_kb), mib(above),
    big_body and string.format("%.1f MiB", big_body / 1048576) or "-", fx(r),
    (m.result_kb and big_body) and string.format("%s (%.1f x body)", mib(m.result_kb),
      m.result_kb * 1024 / big_body) or "-" }, r
end
local linq_mem, mem_ratio = mem_row("linq, Lua 5.4: client:phone_numbers()", "memory.txt")
local floor_mem = mem_row("for comparison: io read + cjson.decode, Lua 5.4, no HTTP",
  "memory_floor.txt")
tables[#tables + 1] = {
  title = string.format("peak memory, %s calls on the big list "
    .. "(baseline: after require and new, before any call)", env.mem_calls or "?"),
  head = { "process", "baseline RSS", "peak (VmHWM)", "peak above baseline", "body",
    "above / body", "Lua heap of one result" },
  rows = { linq_mem, floor_mem },
}

-- Inside nginx (bench/nginx/run): its tables, then its targets after the others.
local nginx_path = (arg[0]:gsub("report%.lua$", "nginx/report.lua"))
local nginx = dofile(nginx_path)(dir, read)
for _, t in ipairs(nginx.tables) do tables[#tables + 1] = t end

-- Many calls at once (bench/latency.lua wrote DIR/latency.tsv): a section of its own, last.
local latency = assert(loadfile((arg[0]:gsub("report%.lua$", "latency.lua"))))("__report")(dir, read)

-- Targets.
local targets = {}
local function target(what, got, limit, pass_when_le)
  local ok
  if got then ok = (pass_when_le and got <= limit) or (not pass_when_le and got >= limit) end
  targets[#targets + 1] = { what, got and string.format("%.3f", got) or "-",
    (pass_when_le and "<= " or ">= ") .. tostring(limit),
    ok == nil and "not measured" or (ok and "met" or "NOT met") }
end
local sr, br = res.small, res.big
target("small list, linq Lua 5.4 calls/s / raw libcurl",
  ratio((sr.linq54 or {}).rate, (sr.raw or {}).rate), 0.90)
target("small list, linq LuaJIT calls/s / raw libcurl",
  ratio((sr.linqjit or {}).rate, (sr.raw or {}).rate), 0.90)
target("big list, linq Lua 5.4 calls/s / (raw libcurl + cjson.decode)",
  ratio((br.linq54 or {}).rate, (br.raw_cjson or {}).rate), 0.95)
target("big list, linq LuaJIT calls/s / (raw libcurl + cjson.decode, LuaJIT)",
  ratio((br.linqjit or {}).rate, (br.raw_cjson_jit or {}).rate), 0.95)
target("start-up, ms added over bare lua5.4",
  withlinq and bare and (withlinq - bare), 20, true)
target("peak memory above baseline / body size, big list", mem_ratio, 4, true)
target("instructions, get_chat / phone_numbers, linq Lua 5.4",
  ratio(ir("get_chat", "linq54"), ir("phone_numbers", "linq54")), 1.10, true)
target("instructions, get_chat / phone_numbers, linq LuaJIT",
  ratio(ir("get_chat", "linqjit"), ir("phone_numbers", "linqjit")), 1.10, true)
target("instructions, list_chats{ limit = 20 } / phone_numbers, linq Lua 5.4",
  ratio(ir("list_chats", "linq54"), ir("phone_numbers", "linq54")), 1.20, true)
target("instructions, list_chats{ limit = 20 } / phone_numbers, linq LuaJIT",
  ratio(ir("list_chats", "linqjit"), ir("phone_numbers", "linqjit")), 1.20, true)
tables[#tables + 1] = { title = "targets", head = { "target", "measured", "wanted", "" },
  rows = targets }
if nginx.targets then tables[#tables + 1] = nginx.targets end

-- Plain text.
local function text_table(t)
  local w = {}
  for i, h in ipairs(t.head) do w[i] = utf8.len(h) end
  -- A row shorter than the head is a note: its last cell spans the rest, left-aligned.
  for _, r in ipairs(t.rows) do
    for i, c in ipairs(r) do
      if #r >= #t.head or i < #r then w[i] = math.max(w[i] or 0, utf8.len(c) or #c) end
    end
  end
  local function line(r)
    local out = {}
    for i = 1, #t.head do
      local c = r[i] or ""
      local pad = string.rep(" ", math.max(0, w[i] - (utf8.len(c) or #c)))
      out[i] = (i <= (t.left or 1) or (#r < #t.head and i == #r)) and (c .. pad) or (pad .. c)
    end
    return (table.concat(out, "  "):gsub("%s+$", ""))
  end
  local lines = { t.title, line(t.head) }
  local dash = {}
  for i = 1, #t.head do dash[i] = string.rep("-", w[i]) end
  lines[#lines + 1] = table.concat(dash, "  ")
  for _, r in ipairs(t.rows) do lines[#lines + 1] = line(r) end
  return table.concat(lines, "\n")
end

local notes = {}
notes[#notes + 1] = "client busy = the client's CPU time / wall time. Client and simulator on one core "
  .. "(BENCH_CPU=same): they take turns, calls/s ~ 1 / (client + server CPU per call). On two cores "
  .. "(split, or none when the scheduler splits them): the small list is bound by cross-core wake-up "
  .. "latency, raw libcurl sits well below 100 % busy and calls/s ratios flatten towards 1; read CPU vs raw."
if next(cg) then
  notes[#notes + 1] = "instructions: callgrind's Ir of the client process only (user space; the simulator "
    .. "is not counted), repeatable to about 1-2 % between runs. floor = raw libcurl + cjson.decode on the same "
    .. "URL, the least a libcurl + cjson client executes for that reply; \"5.4 above floor\" is what the module "
    .. "adds to it. The replies differ in JSON as well as in size, so \"/ phone_numbers\" includes the decode "
    .. "of a bigger reply (see \"floor / phone_numbers\"); \"JSON difference out\" is "
    .. "(linq(call) - floor(call) + floor(phone_numbers)) / linq(phone_numbers), the same floor's difference "
    .. "between the two replies taken out. \"raw libcurl / linq\" is the instruction counterpart of "
    .. "\"calls/s vs raw\". Per-function profile of the three calls: build/bench/callgrind_profile.txt."
end
for _, n in ipairs(nginx.notes) do notes[#notes + 1] = n end
if env.settings then notes[#notes + 1] = env.settings end
if env.load then notes[#notes + 1] = "machine before the run: " .. env.load end
if env.node_note and env.node_note ~= "" then notes[#notes + 1] = "Node SDK: " .. env.node_note end
if env.node_paths and env.node_paths ~= "" then
  notes[#notes + 1] = "Node SDK base URL join (echo mode): " .. env.node_paths
end

local out = {}
for _, t in ipairs(tables) do out[#out + 1] = text_table(t) end
io.write(table.concat(out, "\n\n"), "\n")
for _, n in ipairs(notes) do io.write("\n", n) end
io.write("\n")
if #nginx.summary > 0 then
  io.write("\n")
  for _, l in ipairs(nginx.summary) do io.write(l, "\n") end
end
io.write("\nMany calls at once (issue 12)\n\n")
for _, t in ipairs(latency.tables) do io.write(text_table(t), "\n\n") end
if latency.targets then io.write(text_table(latency.targets), "\n\n") end
for _, n in ipairs(latency.notes) do io.write(n, "\n") end
if #latency.summary > 0 then
  io.write("\n")
  for _, l in ipairs(latency.summary) do io.write(l, "\n") end
end

-- Markdown.
local function md_table(t)
  local function esc(c) return (c:gsub("|", "\\|")) end
  local lines = { "### " .. t.title, "" }
  local h = {}
  for i, c in ipairs(t.head) do h[i] = esc(c) end
  lines[#lines + 1] = "| " .. table.concat(h, " | ") .. " |"
  local al = { ":--" }
  for i = 2, #t.head do al[i] = "--:" end
  lines[#lines + 1] = "|" .. table.concat(al, "|") .. "|"
  for _, r in ipairs(t.rows) do
    local cells = {}
    for i = 1, #t.head do cells[i] = esc(r[i] or "") end
    lines[#lines + 1] = "| " .. table.concat(cells, " | ") .. " |"
  end
  return table.concat(lines, "\n")
end

local md = {
  "# Benchmark results",
  "",
  "Written by `bench/run` (see `bench/README.md`); compare figures within one run only.",
  "",
  "| | |",
  "|:--|:--|",
}
for _, k in ipairs({ "date", "module", "machine", "load", "lua5.4", "luajit", "libcurl", "node", "sdk",
  "nginx", "lua-cjson", "lua-socket", "hyperfine", "valgrind", "settings" }) do
  if env[k] then md[#md + 1] = string.format("| %s | %s |", k, (env[k]:gsub("|", "\\|"))) end
end
md[#md + 1] = ""
for _, t in ipairs(tables) do
  md[#md + 1] = md_table(t)
  md[#md + 1] = ""
end
for _, n in ipairs(notes) do
  if n ~= env.settings and not n:find("^machine before") then md[#md + 1] = "- " .. n end
end
md[#md + 1] = ""
md[#md + 1] = "## Many calls at once (issue 12)"
md[#md + 1] = ""
md[#md + 1] = "`client:all` and sequential calls against the simulator's `slow/50` mode (every answer 50 ms late), "
  .. "the official Node SDK with `Promise.all` beside them, and instructions per call of `client:all` against a "
  .. "loop (`bench/latency.lua`, run by `bench/run`; see `bench/README.md`). Alone, after `make`:"
md[#md + 1] = ""
md[#md + 1] = "```sh"
md[#md + 1] = latency.command or "sim/with-sim --workers 2 lua5.4 bench/latency.lua"
md[#md + 1] = "```"
md[#md + 1] = ""
for _, t in ipairs(latency.tables) do
  md[#md + 1] = md_table(t)
  md[#md + 1] = ""
end
if latency.targets then
  md[#md + 1] = md_table(latency.targets)
  md[#md + 1] = ""
end
for _, n in ipairs(latency.notes) do md[#md + 1] = "- " .. n end
local f = assert(io.open(md_path, "w"))
f:write(table.concat(md, "\n"), "\n")
f:close()
