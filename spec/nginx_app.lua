-- Starts a real nginx with the Lua module (the "application" nginx, apart from the
-- simulator) from a config template, on a free port under a temporary prefix.
local M = {}

local function read(path)
  local f = io.open(path, "rb")
  if not f then return "" end
  local s = f:read("*a")
  f:close()
  return s
end

local function write(path, s)
  local f = assert(io.open(path, "wb"))
  f:write(s)
  f:close()
end

local support = require("support")
local shell, capture = support.execute, support.read_command

M.root = capture("pwd -P")
M.as_root = capture("id -u") == "0"

-- Answers with the status line of GET path, "" when nothing answers.
local function status_line(port, path)
  return capture(string.format("curl -s --noproxy '*' -m 2 -o /dev/null -w '%%{http_code}' " ..
                               "http://127.0.0.1:%d%s", port, path))
end

-- template: the text of an nginx.conf with ${PORT}, ${ROOT} and ${PREFIX} in it.
-- opts: ready (a path that answers once nginx is up), env (variables for nginx),
-- globals (main-context directives given with -g, for a config that lacks them).
-- Returns { url, port, prefix, stop(), error_log() }.
function M.start(template, opts)
  opts = opts or {}
  local ready_path = opts.ready
  local env = ""
  for k, v in pairs(opts.env or {}) do env = env .. k .. "='" .. v .. "' " end
  -- Under the simulator's prefix when there is one: sim/with-sim stops what is
  -- left there even if the specs die before their teardown.
  local parent = os.getenv("LINQ_SIM_PREFIX") and (os.getenv("LINQ_SIM_PREFIX") .. "/apps") or "/tmp"
  shell("mkdir -p " .. parent)
  local prefix = capture("mktemp -d " .. parent .. "/linq-app.XXXXXX")
  assert(shell("mkdir -p " .. prefix .. "/tmp " .. prefix .. "/logs && chmod 755 " .. prefix))
  math.randomseed(os.time() + tonumber(tostring({}):match("0x(%x+)") or "0", 16) % 100000)
  for _ = 1, 20 do
    local port = math.random(20000, 60999)
    local conf = template:gsub("%${(%u+)}", { PORT = tostring(port), ROOT = M.root, PREFIX = prefix })
    write(prefix .. "/nginx.conf", conf)
    -- Workers started by root run as nobody, who may not reach a checkout in a
    -- private folder: keep them as the user who runs the specs.
    local directives = (M.as_root and "user root; " or "") .. (opts.globals or "")
    local globals = ""
    if directives ~= "" then
      globals = "-g '" .. directives:gsub("%${PREFIX}", prefix) .. "' "
    end
    local started = shell(string.format("env %snginx -p %s/ -c %s/nginx.conf -e %s/logs/error.log " ..
                                        "%s2>%s/start.err", env, prefix, prefix, prefix, globals,
                                        prefix))
    if started then
      local app = { port = port, prefix = prefix, url = "http://127.0.0.1:" .. port }
      function app.error_log() return read(prefix .. "/logs/error.log") end
      function app.stop()
        local pid = read(prefix .. "/nginx.pid"):match("%d+")
        if pid then shell("kill " .. pid .. " 2>/dev/null; for i in $(seq 50); do kill -0 " .. pid ..
                          " 2>/dev/null || break; sleep 0.1; done") end
        shell("rm -rf " .. prefix)
      end
      for _ = 1, 100 do
        if status_line(port, ready_path or "/") ~= "000" then return app end
        shell("sleep 0.05")
      end
      local log = app.error_log()
      app.stop()
      error("nginx did not answer:\n" .. log)
    end
    local err = read(prefix .. "/start.err") .. read(prefix .. "/logs/error.log")
    if not err:find("Address already in use", 1, true) then
      shell("rm -rf " .. prefix)
      error("nginx failed to start:\n" .. err)
    end
  end
  error("no free port for nginx")
end

-- The pid of an app's nginx master (from its pid file), or nil.
function M.master_pid(app)
  return (read(app.prefix .. "/nginx.pid"):match("%d+"))
end

-- Sends a signal (a name kill(1) knows: "HUP", "QUIT", ...) to an app's nginx
-- master; true when kill succeeded.
function M.signal(app, sig)
  local pid = M.master_pid(app)
  return pid ~= nil and shell("kill -" .. sig .. " " .. pid .. " 2>/dev/null")
end

-- `nginx -s reload`: HUP to the master, which rereads the config, starts new
-- workers and lets the old ones finish what they are serving.
function M.reload(app)
  return M.signal(app, "HUP")
end

M.read = read
return M
