-- Where a call's CPU goes inside the app worker (bench/nginx/app.conf, location
-- /profile; bench/nginx/run asks it once, after the cells).  Two parts:
--   calls   N calls in a row in one handler for each front, upstream at once: the
--           worker thread's CPU time per call (getrusage RUSAGE_THREAD) and wall time
--           per call.  No wrk request is served meanwhile, so this is the client side
--           alone: Lua, C, cjson and the syscalls of the upstream connection.
--   pieces  each non-waiting step of a linq call (the C exchange and the Lua driver,
--           lua/linq/cosocket.lua and nginx.lua) and of the hand-written client, run
--           M times in a loop: thread CPU ns per step, and how often one call does it.
-- luacheck: read globals ngx
local ffi = require("ffi")
local cjson = require("cjson")
local core = require("linq.core")
local linq = require("linq")
local hand = require("handwritten")

pcall(ffi.cdef, [[
struct linq_bench_timespec { long tv_sec; long tv_nsec; };
int clock_gettime(int clk, struct linq_bench_timespec *tp);
]])
local CLOCK_MONOTONIC, CLOCK_THREAD_CPUTIME_ID = 1, 3
local ts = ffi.new("struct linq_bench_timespec")
local function clock_ns(clk)
  ffi.C.clock_gettime(clk, ts)
  return tonumber(ts.tv_sec) * 1e9 + tonumber(ts.tv_nsec)
end
local function cpu_ns() return clock_ns(CLOCK_THREAD_CPUTIME_ID) end
local function wall_ns() return clock_ns(CLOCK_MONOTONIC) end

local M = {}

local sim = assert(os.getenv("LINQ_SIM_URL"))
local key = assert(os.getenv("LINQ_SIM_KEY"))
local PATH = "/api/partner/v3/phone_numbers"
local tcp, format = ngx.socket.tcp, string.format

-- The simulator's whole reply, as bytes: the input of ex:feed().
local function raw_reply()
  local host, port = sim:match("^http://([^:/]+):(%d+)")
  local sock = tcp()
  sock:settimeout(5000)
  assert(sock:connect(host, tonumber(port)))
  assert(sock:send("GET " .. PATH .. " HTTP/1.1\r\nHost: " .. host .. ":" .. port ..
                   "\r\nAuthorization: Bearer " .. key .. "\r\nConnection: close\r\n\r\n"))
  local lines, len = {}, nil
  while true do
    local l = assert(sock:receive("*l"))
    lines[#lines + 1] = l
    if l == "" then break end
    local v = l:lower():match("^content%-length:%s*(%d+)")
    if v then len = tonumber(v) end
  end
  local body = assert(sock:receive(len))
  sock:close()
  -- Connection: close asked above; give the exchange the keep-alive reply it sees.
  for i, l in ipairs(lines) do
    if l:lower():match("^connection:") then lines[i] = "Connection: keep-alive" end
  end
  return table.concat(lines, "\r\n") .. "\r\n" .. body, lines, body
end

-- n calls of f over `width` light threads (each n / width calls in a row), so the
-- worker stays busy as under load rather than sleeping between calls: a worker that
-- waits for each reply alone pays for every wake-up (cold caches, the VM's idle
-- exits) and measures that more than the call.
local spawn, wait = ngx.thread.spawn, ngx.thread.wait
local function per_call(n, f, width, keep_collector)
  width = width or 16
  local each = math.ceil(n / width)
  n = each * width
  if not keep_collector then collectgarbage() end
  local c0, w0 = cpu_ns(), wall_ns()
  local threads = {}
  for i = 1, width do
    threads[i] = spawn(function() for _ = 1, each do f() end end)
  end
  for i = 1, width do assert(wait(threads[i])) end
  return (cpu_ns() - c0) / n / 1000, (wall_ns() - w0) / n / 1000
end

-- Thread CPU ns per call of f(i), i = 1..n (i keeps LuaJIT from folding constants).
-- Each result is stored, so that LuaJIT cannot drop the work as unused.
local sink = {}
local function piece(n, f)
  f(0) -- once, so that nothing is first-time
  local c0 = cpu_ns()
  for i = 1, n do sink[1] = f(i) end
  return (cpu_ns() - c0) / n, sink[1]
end

-- lua/linq/cosocket.lua as it stands, loaded again with ngx.socket.tcp replaced by
-- a socket whose methods do nothing and whose receiveany returns the whole reply:
-- a linq call with everything but the socket I/O (the C exchange and the Lua driver).
local function noop_cosocket(reply)
  local S = {}
  local mt = { __index = S }
  function S.settimeouts() return true end
  function S.settimeout() end
  function S.connect() return true end
  function S.getreusedtimes() return 1 end
  function S.send(_, data) return #data end
  function S.receiveany() return reply end
  function S.setkeepalive() return true end
  function S.close() return true end
  local fake = setmetatable({ socket = { tcp = function() return setmetatable({}, mt) end } },
                            { __index = ngx })
  local chunk = assert(loadfile(assert(package.searchpath("linq.cosocket", package.path))))
  setfenv(chunk, setmetatable({ ngx = fake }, { __index = _G }))
  return chunk()
end

local client = linq.new{ api_key = key, base_url = sim .. "/api/partner" }
local cclient = core.new{ api_key = key, base_url = sim .. "/api/partner" }
local cosocket = require("linq.cosocket")
local capture = ngx.location.capture
-- ngx.location.capture is left out of the calls in a row: nginx keeps every
-- subrequest of a request until the request ends, so thousands in one handler cost
-- more and more each (milliseconds per call after 10,000); the wrk cells measure it.
local FRONTS = {
  { "linq", function()
    local ok, res = pcall(client.phone_numbers, client)
    assert(ok and res.phone_numbers)
  end },
  -- lua/linq/cosocket.lua called directly, without nginx.lua's check, phase and pcall
  { "linq_direct", function() assert(cosocket.call(cclient, "phone_numbers").phone_numbers) end },
  { "hand", function() assert(hand.get(PATH).phone_numbers) end },
  { "capture", function()
    local r = capture("/_up/0")
    assert(cjson.decode(r.body).phone_numbers)
  end, skip = true },
}

-- /profile?front=NAME&calls=N[&width=W]: only that front (for strace -c, say).
-- /profile?jitv=FILE: LuaJIT's jit.v trace log of this worker into FILE from now on.
function M.seq(front, n, width)
  for _, f in ipairs(FRONTS) do
    if f[1] == front then
      local cpu, wall = per_call(tonumber(n) or 10000, f[2], tonumber(width))
      ngx.print(cjson.encode{ front = front, cpu_us = cpu, wall_us = wall })
      return
    end
  end
  ngx.exit(404)
end

function M.jitv(file)
  if file == "off" then require("jit.v").off() else require("jit.v").start(file) end
  ngx.print("{}")
end

function M.run(n_calls, n_pieces)
  n_calls = tonumber(n_calls) or 20000
  n_pieces = tonumber(n_pieces) or 100000
  local out = { calls = {}, pieces = {}, n_calls = n_calls, n_pieces = n_pieces }

  -- 1. calls in a row, 16 light threads.
  for _ = 1, 2 do  -- twice, interleaved; the lower CPU time is kept
    for _, f in ipairs(FRONTS) do
      if not f.skip then
        f[2]()
        local cpu, wall = per_call(n_calls, f[2])
        local o = out.calls[f[1]]
        if not o or cpu < o.cpu_us then out.calls[f[1]] = { cpu_us = cpu, wall_us = wall } end
      end
    end
  end

  -- Lua heap allocated per call (collector stopped; C-side malloc not included).
  out.alloc = {}
  for _, f in ipairs(FRONTS) do
    if not f.skip then
      collectgarbage()
      collectgarbage("stop")
      local k0 = collectgarbage("count")
      per_call(1600, f[2], 16, true)
      out.alloc[f[1]] = (collectgarbage("count") - k0) * 1024 / 1600
      collectgarbage("restart")
    end
  end

  -- 2. the pieces, each alone in a loop.
  local reply, lines, body = raw_reply()
  out.reply_bytes = #reply
  local cc = core.new{ api_key = key, base_url = sim .. "/api/partner" }
  local prepare = core._prepare.phone_numbers
  local ex = prepare(cc)
  local host, port, tls = ex:target()
  local sock = tcp()
  local N = n_pieces
  local P = out.pieces
  -- who: linq, hand (the hand-written client) or both; per: times per call.
  local function add(id, who, per, ns) P[#P + 1] = { id = id, who = who, per = per, ns = ns } end

  local noop = noop_cosocket(reply)
  add("linq_noop", "linq", 1, piece(N, function() return noop.call(cc, "phone_numbers") end))
  local t_prepare = piece(N, function() return prepare(cc) end)
  add("prepare", "linq", 1, t_prepare)
  local t_feed = piece(N, function() return prepare(cc):feed(reply) end) - t_prepare
  add("feed", "linq", 1, t_feed)
  add("result", "linq", 1, piece(N, function()
    local e = prepare(cc)
    e:feed(reply)
    return e:result()
  end) - t_prepare - t_feed)
  add("decode", "both", 1, piece(N, function() return cjson.decode(body) end))
  add("request", "linq", 1, piece(N, function() return ex:request() end))
  add("target", "linq", 1, piece(N, function() ex:target(); return ex:timeout() end))
  add("keepalive", "linq", 1, piece(N, function() return ex:keepalive() end))
  add("pool_name", "linq", 1, piece(N, function()
    return format("linq:%s:%d:%s", host, port, tls and "tls" or "tcp") end))
  add("update_time", "linq", 5, piece(N, function() ngx.update_time(); return ngx.now() end))
  add("settimeouts", "linq", 2, piece(N, function(i) return sock:settimeouts(1000 + i % 2, 1000, 1000) end))
  add("settimeout", "both", 1, piece(N, function(i) return sock:settimeout(1000 + i % 2) end))
  add("phase_pcall", "linq", 1, piece(N, function(i)
    ngx.get_phase(); return pcall(tostring, i) end))
  add("tcp", "both", 1, piece(N, function() return tcp() end))
  -- A pooled connection taken and put back, with linq's named pool (an options table
  -- and a name made per call) and with the default pool, as the hand-written client.
  local shost, sport = sim:match("^http://([^:/]+):(%d+)")
  sport = tonumber(sport)
  local pool_name = format("linq:%s:%d:%s", shost, sport, "tcp")
  local function cycle(opts)
    local s = tcp()
    s:settimeout(1000)
    assert(s:connect(shost, sport, opts and { pool = format("linq:%s:%d:%s", shost, sport, "tcp") }))
    return s:setkeepalive(60000, 64)
  end
  cycle(true); cycle(false)
  add("pool_cycle_named", "linq", 1, piece(N / 10, function() return cycle(true) end))
  add("pool_cycle_default", "hand", 1, piece(N / 10, function() return cycle(false) end))
  out.pool_name = pool_name
  out.request_bytes = #ex:request()
  out.request = ex:request():gsub("Bearer [^\r]*", "Bearer <key>")
  local path, hp = PATH, "127.0.0.1:" .. port
  add("hand_request", "hand", 1, piece(N, function()
    return "GET " .. path .. " HTTP/1.1\r\nHost: " .. hp .. "\r\nAuthorization: Bearer " .. key ..
      "\r\nAccept: application/json\r\n\r\n" end))
  out.header_lines = #lines - 2
  add("hand_headers", "hand", 1, piece(N, function()
    local len
    local status = tonumber(lines[1]:match("^HTTP/1%.%d (%d%d%d)"))
    for i = 2, #lines - 1 do
      local name, value = lines[i]:match("^([^:]+):%s*(.-)%s*$")
      name = name:lower()
      if name == "content-length" then len = tonumber(value) end
    end
    return len, status
  end))
  ngx.print(cjson.encode(out))
end

return M
