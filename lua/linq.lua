--- linq: a client for the Linq API, for Lua 5.1-5.4, LuaJIT and OpenResty/nginx.
-- Requests, retries, errors and JSON all run in the C core (`linq.core`); every
-- operation of the API is a method made there from one table (src/operations.c).
-- Paging and the attachment upload, whose steps are whole calls, are written here
-- over those methods.  Inside nginx, `linq.new` makes a client whose calls go over
-- nginx's cosockets (lua/linq/nginx.lua, lua/linq/cosocket.lua), so a call never
-- blocks the nginx worker.  See README.md for the interface.
local core = require("linq.core")
local paging = require("linq.paging")
local upload = require("linq.upload")

local linq = {}
for k, v in pairs(core) do
  if k:sub(1, 1) ~= "_" or k == "_VERSION" then linq[k] = v end
end

-- A copy for the caller to read: changing it changes nothing in any client.
linq.operations = core._operations()

-- Webhooks: linq.webhook, linq.webhook_signature and linq.events come from the C core
-- (src/webhook.c); the in-process store of delivered webhook-ids is Lua.
linq.replay_guard = require("linq.replay").new

paging.install(core._methods, core._operations(), core._error_mt)
upload.install(core._methods)
-- client:all and client:each_result: staged in C, run over libcurl's multi interface.
require("linq.batch").install(core._methods, core._stage, core._batch)

-- An nginx worker or master VM has ngx.run_worker_thread; plain Lua and the VMs
-- of nginx's pool threads (where blocking is what they are for) do not.  Only a
-- type test: the module stays loadable everywhere.
if type(ngx) == "table" and type(ngx.run_worker_thread) == "function" then
  linq.new = require("linq.nginx").new
end

return linq
