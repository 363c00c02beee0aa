--- linq: a client for the Linq API, for Lua 5.1-5.4, LuaJIT and OpenResty/nginx.
-- Requests, retries, errors and JSON all run in the C core (`linq.core`); every
-- operation of the API is a method made there from one table (src/operations.c).
-- Paging and the attachment upload, whose steps are whole calls, are written here
-- over those methods.  Inside nginx, `linq.new` makes a client whose calls go over
-- nginx's cosockets (lua/linq/nginx.lua, lua/linq/cosocket.lua), so a call never
-- blocks the nginx worker.  `require("linq.safe")` is this module with clients
-- whose calls return nil, err instead of raising (lua/linq/safe.lua).  See
-- README.md for the interface.
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

-- Every e.type the module can produce (src/errors.c, src/call.c, src/webhook.c),
-- so that `e.type == linq.errors.RateLimitError` fails loudly on a typo, where a
-- misspelt string would just never match.
linq.errors = {}
for _, name in ipairs{
  "BadRequestError", "AuthenticationError", "PermissionDeniedError", "NotFoundError",
  "ConflictError", "UnprocessableEntityError", "RateLimitError", "InternalServerError",
  "APIStatusError", "APIConnectionError", "APITimeoutError", "APIResponseValidationError",
  "WebhookVerificationError",
} do linq.errors[name] = name end
setmetatable(linq.errors, {
  __index = function(_, name)
    error("linq.errors has no error type '" .. tostring(name) .. "'", 2)
  end,
  __newindex = function()
    error("linq.errors is read-only", 2)
  end,
})

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
