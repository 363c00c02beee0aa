-- router.lua: the stateful Linq API V3 behind every mode of the simulator.
--
-- router.handle(ns, api_path) answers one request for namespace ns and returns
-- status, body (a string), content type (nil = application/json). The modes in
-- sim.lua decide how that answer is sent (at once, late, dripped, cut, ...).
--
-- Order of checks for every operation: auth (done by the mode), route
-- (404/4004 for an unknown path or method), the path's resources (404 with the
-- resource's code), then the body (400), then the state (409).

-- luacheck: std ngx_lua

local json = require("json")
local C = require("common")
local store = require("store")

local phone = require("api.phone_numbers")
local chats = require("api.chats")
local messages = require("api.messages")
local polls = require("api.polls")
local attachments = require("api.attachments")
local capability = require("api.capability")
local contact_card = require("api.contact_card")
local webhooks = require("api.webhooks")
local payments = require("api.payments")
local blocked = require("api.blocked_handles")
local experiences = require("api.experiences")
local inbound = require("api.inbound")
local delivery = require("delivery")

local ngx = ngx
local find, sub = string.find, string.sub
local type, pcall, ipairs, tostring = type, pcall, ipairs, tostring

local _M = {}

-- Every operation: method, path under /v3/ (":name" = a path parameter,
-- percent-decoded before the handler sees it), handler, and whether the
-- operation has a body schema (handlers read it with common.json_body();
-- for the others any body that comes anyway must still be declared JSON).
local BODY = true
local ROUTES = {
  -- phone numbers (3.8, 4)
  { "GET", "phone_numbers", phone.list },
  { "GET", "phonenumbers", phone.list }, -- deprecated
  { "PUT", "phone_numbers/:id", phone.update, BODY },
  { "POST", "phone_numbers/:phone/reputation_audit", phone.start_audit },
  { "GET", "phone_numbers/:phone/reputation_audit/:audit", phone.get_audit },
  { "GET", "available_number", phone.available },
  -- chats (3.1 - 3.5, 4)
  { "POST", "chats", chats.create, BODY },
  { "GET", "chats", chats.list },
  { "GET", "chats/:chat", chats.get },
  { "PUT", "chats/:chat", chats.update, BODY },
  { "POST", "chats/:chat/read", chats.read },
  { "POST", "chats/:chat/leave", chats.leave },
  { "POST", "chats/:chat/share_contact_card", chats.share_contact_card },
  { "POST", "chats/:chat/voicememo", chats.voicememo, BODY },
  { "POST", "chats/:chat/participants", chats.add_participant, BODY },
  { "DELETE", "chats/:chat/participants", chats.remove_participant, BODY },
  { "POST", "chats/:chat/typing", chats.typing_start },
  { "DELETE", "chats/:chat/typing", chats.typing_stop },
  { "POST", "chats/:chat/messages", messages.chat_send, BODY },
  { "GET", "chats/:chat/messages", messages.chat_list },
  { "POST", "chats/:chat/location/request", chats.location_request },
  { "GET", "chats/:chat/location", chats.location },
  { "POST", "chats/:chat/polls", polls.create, BODY },
  { "POST", "chats/:chat/background", chats.background_set, BODY },
  { "DELETE", "chats/:chat/background", chats.background_remove },
  -- messages (3.6, 4)
  { "POST", "messages", messages.create, BODY },
  { "GET", "messages/:message", messages.get },
  { "PATCH", "messages/:message", messages.update, BODY },
  { "DELETE", "messages/:message", messages.delete },
  { "GET", "messages/:message/thread", messages.thread },
  { "POST", "messages/:message/reactions", messages.react, BODY },
  { "POST", "messages/:message/update", messages.update_card, BODY },
  { "GET", "messages/:message/poll", polls.get },
  { "POST", "messages/:message/poll/options", polls.add_options, BODY },
  { "POST", "messages/:message/poll/votes", polls.vote, BODY },
  -- attachments (3.7)
  { "POST", "attachments", attachments.create, BODY },
  { "GET", "attachments/:attachment", attachments.get },
  { "DELETE", "attachments/:attachment", attachments.delete },
  -- capability (3.10)
  { "POST", "capability/check_imessage", capability.check_imessage, BODY },
  { "POST", "capability/check_rcs", capability.check_rcs, BODY },
  -- contact card (3.11)
  { "GET", "contact_card", contact_card.get },
  { "POST", "contact_card", contact_card.create, BODY },
  { "PATCH", "contact_card", contact_card.update, BODY },
  -- webhooks (3.9)
  { "GET", "webhook-events", webhooks.events },
  { "POST", "webhook-subscriptions", webhooks.create, BODY },
  { "GET", "webhook-subscriptions", webhooks.list },
  { "GET", "webhook-subscriptions/:subscription", webhooks.get },
  { "PUT", "webhook-subscriptions/:subscription", webhooks.update, BODY },
  { "DELETE", "webhook-subscriptions/:subscription", webhooks.delete },
  -- payments (4)
  { "POST", "payment_requests", payments.request_create, BODY },
  { "GET", "payment_requests", payments.request_list },
  { "GET", "payment_requests/:request", payments.request_get },
  { "POST", "payment_requests/:request/cancel", payments.request_cancel },
  { "GET", "payments/providers/:provider", payments.provider_get },
  { "POST", "payments/providers/:provider/connect", payments.provider_connect, BODY },
  { "POST", "payments/handles/:handle/connect", payments.handle_connect },
  { "GET", "payments/handles/:handle/connection", payments.handle_connection },
  { "DELETE", "payments/handles/:handle/connection", payments.handle_revoke },
  { "POST", "payments/handles/:handle/verify", payments.handle_verify, BODY },
  { "POST", "payments", payments.create, BODY },
  { "GET", "payments/:payment", payments.get },
  { "POST", "payments/:payment/cancel", payments.cancel },
  { "GET", "payments/:payment/credentials", payments.credentials },
  -- blocked handles, experiences (4)
  { "GET", "blocked_handles", blocked.list },
  { "POST", "blocked_handles", blocked.block, BODY },
  { "DELETE", "blocked_handles", blocked.unblock, BODY },
  { "GET", "experiences", experiences.list },
  { "GET", "experiences/:experience", experiences.get },
  -- the simulator's own: an inbound message (a person writes to us)
  { "POST", "sim/inbound", inbound.inbound, BODY },
}

local function split(s)
  local t, i = {}, 1
  while true do
    local j = find(s, "/", i, true)
    if not j then
      t[#t + 1] = sub(s, i)
      return t
    end
    t[#t + 1] = sub(s, i, j - 1)
    i = j + 1
  end
end

-- "METHOD <segment count>" -> list of { segs, handler, body }
local INDEX = {}
for _, r in ipairs(ROUTES) do
  local segs = split(r[2])
  local key = r[1] .. " " .. #segs
  INDEX[key] = INDEX[key] or {}
  local list = INDEX[key]
  list[#list + 1] = { segs = segs, handler = r[3], body = r[4] }
end

local function match_route(method, api_path)
  if sub(api_path, 1, 4) ~= "/v3/" then return nil end
  local segs = split(sub(api_path, 5))
  local candidates = INDEX[method .. " " .. #segs]
  if not candidates then return nil end
  for _, r in ipairs(candidates) do
    local params, ok = {}, true
    for i, want in ipairs(r.segs) do
      local got = segs[i]
      if sub(want, 1, 1) == ":" then
        if got == "" then ok = false break end
        params[sub(want, 2)] = C.unescape(got)
      elseif got ~= want then
        ok = false
        break
      end
    end
    if ok then return r, params end
  end
  return nil
end

-- Namespace names: letters, digits and - _ . : (at most 100); "default" is
-- the one of api/partner.
function _M.valid_ns(ns)
  return type(ns) == "string" and #ns <= 100 and find(ns, "^[%w%-_.:]+$") ~= nil
end

function _M.handle(ns, api_path)
  local method = ngx.req.get_method()
  if method == "HEAD" then method = "GET" end
  local route, params = match_route(method, api_path)
  if not route then return 404, C.envelope(404, 4004) end
  local ctx = { ns = ns, st = store.ns(ns), method = method, path = api_path }
  local ok, status, body, ctype = pcall(function()
    if not route.body then C.check_body_ctype(C.raw_body()) end
    return route.handler(ctx, params)
  end)
  if not ok then
    local e = status
    if C.is_failure(e) then
      return e.status, C.envelope(e.status, e.code, e.message)
    end
    ngx.log(ngx.ERR, "sim: ", method, " ", api_path, ": ", tostring(e))
    return 500, C.envelope(500, 3006, "Internal server error (simulator): " .. tostring(e))
  end
  if type(body) == "table" then body = json.encode(body) end
  -- Webhooks for what the request did, delivered later from timers (delivery.lua).
  if ctx.st._events and status < 400 then
    local fok, ferr = pcall(delivery.flush, ctx.st)
    if not fok then ngx.log(ngx.ERR, "sim: webhooks of ", method, " ", api_path, ": ", tostring(ferr)) end
  end
  return status, body or "", ctype
end

return _M
