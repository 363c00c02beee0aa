--- linq: a client for the Linq API, for Lua 5.1-5.4, LuaJIT and OpenResty/nginx.
-- Requests, retries, errors and JSON all run in the C core (`linq.core`).  Inside
-- nginx, `linq.new` makes a client whose calls run the C core on nginx's thread
-- pool (lua/linq/nginx.lua), so a call never blocks the nginx worker.
-- See README.md for the interface.
local core = require("linq.core")

local linq = {}
for k, v in pairs(core) do
  if k:sub(1, 1) ~= "_" or k == "_VERSION" then linq[k] = v end
end

-- An nginx worker or master VM has ngx.run_worker_thread; plain Lua and the VMs
-- of nginx's pool threads (where blocking is what they are for) do not.  Only a
-- type test: the module stays loadable everywhere.
if type(ngx) == "table" and type(ngx.run_worker_thread) == "function" then
  linq.new = require("linq.nginx").new
end

return linq
