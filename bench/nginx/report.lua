-- The nginx section of the report (bench/nginx/run wrote DIR/nginx.tsv); loaded by
-- bench/report.lua:  dofile("bench/nginx/report.lua")(dir, read)  returns
-- { tables = {...}, targets = table, notes = {...}, summary = {...} }.
local cjson = require("cjson")

local FRONTS = {
  { id = "linq", name = "linq" },
  { id = "hand", name = "hand-written" },
  { id = "capture", name = "capture + proxy_pass" },
}
local PIECES = {
  linq_noop = "linq: a whole call with no-op sockets (lua/linq/cosocket.lua loaded with a fake ngx.socket.tcp): "
    .. "the C exchange and the Lua driver, no I/O",
  prepare = "C: core._prepare.phone_numbers(client): argument checks, the exchange, the request bytes",
  feed = "C: ex:feed(the whole reply): http-parser and the header callbacks",
  result = "C: ex:result(): the verdict, cjson decode, res and meta",
  decode = "cjson.decode(body) alone (the hand-written client's decode; linq's is inside ex:result())",
  request = "C: ex:request()",
  target = "C: ex:target() + ex:timeout()",
  keepalive = "C: ex:keepalive()",
  pool_name = "Lua: the pool name, string.format(\"linq:%s:%d:%s\", ...) on each call",
  update_time = "Lua: ngx.update_time() + ngx.now(): attempt start, 3 x left_ms() for settimeouts, 1 per read",
  settimeouts = "Lua: sock:settimeouts(c, s, r): before connect, and again after it",
  settimeout = "Lua: sock:settimeout(ms): linq before each read, hand-written once",
  phase_pcall = "Lua: ngx.get_phase() + pcall (lua/linq/nginx.lua's dispatch)",
  tcp = "ngx.socket.tcp()",
  hand_request = "hand-written: the request string (concatenation)",
  hand_headers = "hand-written: the status line and HEADER_LINES header lines, parsed in Lua (match, lower)",
  pool_cycle_named = "tcp() + connect from the keepalive pool + setkeepalive, linq's way: a named pool "
    .. "({ pool = format(...) } per call)",
  pool_cycle_default = "tcp() + connect from the keepalive pool + setkeepalive, the default pool (host:port)",
}
local DELAYS = { "0", "50" }
local CONNS = { "1", "16", "128" }

local function fields(s)
  local t = {}
  for k, v in s:gmatch("([%w_]+)=(%S+)") do t[k] = tonumber(v) or v end
  return t
end

local function fint(x)
  if not x then return "-" end
  local s = string.format("%.0f", x)
  local sign, digits = s:match("^(%-?)(%d+)$")
  return sign .. digits:reverse():gsub("(%d%d%d)", "%1,"):reverse():gsub("^,", "")
end
local function fms(us) return us and string.format("%.2f", us / 1000) or "-" end

return function(dir, read)
  local text = read(dir .. "/nginx.tsv")
  local out = { tables = {}, notes = {}, summary = {} }
  if not text then
    local why = read(dir .. "/nginx.note") or "not measured"
    out.tables[1] = { title = "inside nginx", head = { "" }, rows = { { (why:gsub("%s+$", "")) } } }
    return out
  end

  local env, cells, inflight, rss, profile, failed = {}, {}, {}, nil, nil, {}
  for line in text:gmatch("[^\n]+") do
    local kind, rest = line:match("^([^\t]+)\t(.*)$")
    if kind == "cell" then
      local f, d, c, _, r = rest:match("^([^\t]+)\t([^\t]+)\t([^\t]+)\t([^\t]+)\t(.*)$")
      local m = fields(r)
      m.rps = m.requests / (m.duration_us / 1e6)
      m.errors = m.connect + m.read + m.write + m.status + m.timeout
      m.cpu_us = m.app_cpu_ms and m.requests > 0 and m.app_cpu_ms * 1000 / m.requests
      m.busy = m.app_cpu_ms and m.app_cpu_ms * 1000 / m.duration_us
      local key = f .. "/" .. d .. "/" .. c
      cells[key] = cells[key] or { runs = {} }
      local cell = cells[key]
      cell.runs[#cell.runs + 1] = m
      if not cell.best or m.rps > cell.best.rps then cell.best = m end
    elseif kind == "inflight" then
      local f, j = rest:match("^([^\t]+)\t(.*)$")
      local ok, t = pcall(cjson.decode, j)
      inflight[f] = ok and type(t) == "table" and t or { note = j }
    elseif kind == "rss" then
      local f, r = rest:match("^([^\t]+)\t(.*)$")
      rss = fields(r)
      rss.front = f
    elseif kind == "profile" then
      local ok, t = pcall(cjson.decode, rest)
      profile = ok and type(t) == "table" and t or nil
    elseif kind == "failed" then
      failed[#failed + 1] = rest
    elseif kind then
      env[kind] = rest
    end
  end

  -- The cells.
  local rows = {}
  for _, d in ipairs(DELAYS) do
    for _, c in ipairs(CONNS) do
      local hand = (cells["hand/" .. d .. "/" .. c] or {}).best
      for _, f in ipairs(FRONTS) do
        local cell = cells[f.id .. "/" .. d .. "/" .. c]
        if cell then
          local m, both = cell.best, {}
          for i, r in ipairs(cell.runs) do both[i] = fint(r.rps) end
          rows[#rows + 1] = { d .. " ms", c, f.name, fint(m.rps), table.concat(both, " / "), fms(m.p50_us),
            fms(m.p99_us), tostring(m.errors), hand and string.format("%.2f", m.rps / hand.rps) or "-",
            m.cpu_us and m.app_cpu_ms >= 200 and string.format("%.1f", m.cpu_us) or "-",
            m.busy and string.format("%.0f %%", m.busy * 100) or "-" }
        end
      end
    end
  end
  out.tables[#out.tables + 1] = {
    title = "inside nginx: one app worker calls the simulator and answers wrk (" .. (env.settings or "?") .. ")",
    head = { "upstream answers after", "connections", "front", "req/s (better run)", "req/s, run 1 / run 2",
      "p50 ms", "p99 ms", "errors", "req/s vs hand-written", "worker CPU µs/req", "worker busy" },
    rows = rows,
  }

  -- Calls in flight.
  local irows = {}
  for _, f in ipairs(FRONTS) do
    local t = inflight[f.id]
    if t and t.note then
      irows[#irows + 1] = { f.name, t.note }
    elseif t then
      irows[#irows + 1] = { f.name, fint(t.n), fint(t.ok), fint(t.failed), fint(t.ms),
        t.first_error and tostring(t.first_error) or "" }
    end
  end
  if #irows > 0 then
    out.tables[#out.tables + 1] = {
      title = "inside nginx: calls in flight at once in one handler (ngx.thread.spawn, upstream after 50 ms)",
      head = { "front", "calls", "succeeded", "failed", "wall ms, all of them", "first error" },
      rows = irows,
    }
  end

  -- RSS and descriptors.
  if rss then
    out.tables[#out.tables + 1] = {
      title = string.format("inside nginx: the worker across %s calls of linq (upstream at once, "
        .. "wrk -c 128, twice the pool; after a warm-up; each sample after a full collection)", fint(rss.calls)),
      head = { "front", "calls", "errors", "VmRSS before", "VmRSS after", "growth", "Lua heap before / after",
        "descriptors before", "descriptors after", "keepalive pool" },
      rows = { { rss.front, fint(rss.calls), fint(rss.errors), fint(rss.before_rss_kb) .. " KiB",
        fint(rss.after_rss_kb) .. " KiB", string.format("%+d KiB", rss.after_rss_kb - rss.before_rss_kb),
        string.format("%s / %s KiB", fint(rss.before_lua_kb), fint(rss.after_lua_kb)),
        fint(rss.before_fds), fint(rss.after_fds), fint(rss.pool) } },
    }
  end

  -- Where a call's CPU goes (bench/nginx/profile.lua).
  if profile then
    local prow = {}
    local CALLS = {
      { "linq", "linq", "linq: client:phone_numbers()" },
      { "linq_direct", "linq", "linq: lua/linq/cosocket.lua's call() directly, without nginx.lua's dispatch" },
      { "hand", "hand-written", "hand-written client" },
    }
    for _, f in ipairs(CALLS) do
      local c = (profile.calls or {})[f[1]]
      if c then
        prow[#prow + 1] = { string.format("%s: whole calls over real sockets (%s calls, 16 light threads in one "
          .. "handler, upstream at once; thread CPU, better of 2)", f[3], fint(profile.n_calls)), f[2], "", "",
          string.format("%.0f", c.cpu_us * 1000) }
      end
    end
    for _, f in ipairs(CALLS) do
      local a = (profile.alloc or {})[f[1]]
      if a then
        prow[#prow + 1] = { string.format("%s: Lua heap allocated per call, in bytes (collector stopped; "
          .. "malloc in C not counted)", f[3]), f[2], "", "", string.format("%.0f", a) }
      end
    end
    local ns = {}
    for _, p in ipairs(profile.pieces or {}) do ns[p.id] = p.ns end
    for _, p in ipairs(profile.pieces or {}) do
      local what = PIECES[p.id] or p.id
      what = what:gsub("HEADER_LINES", fint(profile.header_lines))
      prow[#prow + 1] = { what, p.who == "hand" and "hand-written" or p.who, string.format("%.0f", p.ns),
        string.format("%d", p.per), string.format("%.0f", p.ns * p.per) }
      if p.id == "decode" and ns.result then
        prow[#prow + 1] = { "C: ex:result() minus cjson.decode: the verdict, res and meta", "linq", "", "1",
          string.format("%.0f", ns.result - p.ns) }
      end
    end
    out.tables[#out.tables + 1] = {
      title = string.format("inside nginx: where a call's CPU goes (thread CPU ns, each step alone in a loop of "
        .. "%s; the simulator's reply, %s bytes; linq's request, %s bytes)", fint(profile.n_pieces),
        fint(profile.reply_bytes), fint(profile.request_bytes)),
      head = { "step", "client", "ns each", "times per call", "ns per call" },
      rows = prow,
    }
  end

  if #failed > 0 then
    local frows = {}
    for _, f in ipairs(failed) do frows[#frows + 1] = { f } end
    out.tables[#out.tables + 1] = { title = "inside nginx: failed measurements", head = { "" }, rows = frows }
  end

  -- Targets.
  local trows = {}
  local function target(what, measured, wanted, ok)
    trows[#trows + 1] = { what, measured or "-", wanted, ok == nil and "not measured" or (ok and "PASS" or "FAIL") }
    out.summary[#out.summary + 1] = string.format("%s: %s (%s; wanted %s)",
      ok == nil and "NOT MEASURED" or (ok and "PASS" or "FAIL"), what, measured or "-", wanted)
  end
  local function best(f, d, c) return (cells[f .. "/" .. d .. "/" .. c] or {}).best end
  do
    local l, h = best("linq", "0", "16"), best("hand", "0", "16")
    local r = l and h and l.rps / h.rps
    target("inside nginx, upstream at once, 16 connections: linq req/s / hand-written",
      r and string.format("%.3f", r), ">= 0.90", r and r >= 0.90)
  end
  do -- for reference: the same comparison in worker CPU per request, which moves less with other work
    local l, h = best("linq", "0", "16"), best("hand", "0", "16")
    local r = l and h and l.cpu_us and h.cpu_us and h.cpu_us / l.cpu_us
    trows[#trows + 1] = { "for reference, same cell: hand-written / linq worker CPU per request",
      r and string.format("%.3f (%.1f / %.1f µs)", r, h.cpu_us, l.cpu_us) or "-", "", "" }
  end
  do
    local l, h = best("linq", "50", "128"), best("hand", "50", "128")
    local r = l and h and l.rps / h.rps
    target("inside nginx, upstream after 50 ms, 128 connections: linq errors, req/s / hand-written",
      r and string.format("%d errors, %.3f", l.errors, r), "0 errors, >= 0.95",
      r and (l.errors == 0 and r >= 0.95))
  end
  do
    local t = inflight.linq
    local ok = t and t.n and (t.ok == t.n and t.failed == 0 and t.n >= 1000)
    target("inside nginx: 1,000 linq calls in flight in one worker all succeed",
      t and t.n and string.format("%s of %s in %s ms", fint(t.ok), fint(t.n), fint(t.ms)),
      "all of 1,000", t and t.n and ok or nil)
  end
  if rss then
    local grow, dfd = rss.after_rss_kb - rss.before_rss_kb, rss.after_fds - rss.before_fds
    target(string.format("inside nginx: worker RSS and descriptors flat across %s linq calls", fint(rss.calls)),
      string.format("RSS %+d KiB, descriptors %+d", grow, dfd), "< 1 MiB, within the pool (64)",
      grow < 1024 and math.abs(dfd) <= (rss.pool or 64) and rss.calls >= 100000)
  else
    target("inside nginx: worker RSS and descriptors flat across 100,000 linq calls", nil, "< 1 MiB", nil)
  end
  out.targets = { title = "targets inside nginx", head = { "target", "measured", "wanted", "" }, rows = trows }

  out.notes[#out.notes + 1] = "inside nginx: each cell ran twice (the fronts interleaved within a cell) and the "
    .. "run with more req/s is kept; both are shown. errors = wrk's socket errors (connect, read, write, "
    .. "timeout) + responses with status >= 400. worker CPU µs/req = CPU time of the app worker (user + "
    .. "system, /proc) / requests in the kept run; worker busy = that CPU time / wall time: near 100 % the "
    .. "worker is the bottleneck and req/s compares the fronts; well below, the simulator, wrk or other work "
    .. "on the machine limited the run. " .. (env.versions or "")
  if env.answer then out.notes[#out.notes + 1] = "inside nginx: every front answers " .. env.answer end
  return out
end
