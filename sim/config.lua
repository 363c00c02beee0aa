-- config.lua: fixed data of the simulator, loaded once in the nginx master by
-- sim.init() (workers inherit it): the key, the partner's phone numbers from
-- the data file, the webhook event types and the experiences.

-- luacheck: std ngx_lua

local cjson = require("cjson.safe")

local match = string.match
local type, ipairs, error, tostring = type, ipairs, error, tostring

local _M = {
  auth_expected = nil,  -- "Bearer <key>"
  list_body = nil,      -- GET /v3/phone_numbers, served as is
  numbers = {},         -- phone-number id -> E.164 (PUT /v3/phone_numbers/{id})
  partner = {},         -- E.164 -> true: the partner's lines (chat `from`)
  partner_list = {},    -- the same, in data-file order
}

-- Loads the data file (a {"phone_numbers":[...]} object; errors are fatal).
function _M.load(key, path, body)
  _M.auth_expected = "Bearer " .. key
  body = match(body, "^(.-)%s*$")
  local obj, derr = cjson.decode(body)
  if type(obj) ~= "table" or type(obj.phone_numbers) ~= "table" then
    error("sim: data file " .. path .. " is not a JSON object with a "
      .. "phone_numbers array: " .. tostring(derr or "wrong shape"))
  end
  for _, pn in ipairs(obj.phone_numbers) do
    if type(pn) == "table" and type(pn.id) == "string" then
      _M.numbers[pn.id] = pn.phone_number
    end
    if type(pn) == "table" and type(pn.phone_number) == "string"
      and not _M.partner[pn.phone_number] then
      _M.partner[pn.phone_number] = true
      _M.partner_list[#_M.partner_list + 1] = pn.phone_number
    end
  end
  _M.list_body = body
end

-- Webhook event types (api-v3.md 6.3): the 27 of TS 0.28.2, then the 18 that
-- Go 0.38.3 adds.
_M.WEBHOOK_EVENTS = {
  "message.sent", "message.received", "message.read", "message.delivered",
  "message.failed", "message.edited", "reaction.added", "reaction.removed",
  "participant.added", "participant.removed", "chat.created",
  "chat.group_name_updated", "chat.group_icon_updated",
  "chat.group_name_update_failed", "chat.group_icon_update_failed",
  "chat.typing_indicator.started", "chat.typing_indicator.stopped",
  "phone_number.status_updated", "call.initiated", "call.ringing",
  "call.answered", "call.ended", "call.failed", "call.declined",
  "call.no_answer", "location.sharing.started", "location.sharing.stopped",
  "poll.received", "poll.failed", "poll.sent", "poll.delivered", "poll.read",
  "poll.updated", "poll.vote.added", "poll.vote.removed",
  "poll.reaction.added", "chat.background_updated",
  "chat.background_update_failed", "payment.succeeded", "payment.canceled",
  "payment.expired", "payment.declined", "payment.authorized",
  "connection.created", "connection.revoked",
}
_M.WEBHOOK_EVENT_SET = {}
for _, e in ipairs(_M.WEBHOOK_EVENTS) do _M.WEBHOOK_EVENT_SET[e] = true end

-- Two fixed experiences (GET /v3/experiences).
_M.EXPERIENCES = {
  {
    experience = "checkout", display_name = "Checkout",
    actions = {
      {
        name = "start", summary = "Start a checkout for an amount",
        fields = {
          amount = { type = "cents", required = true, max = 100000000 },
          description = { type = "string", required = false, max = 200 },
          return_url = { type = "url", required = false, max = 2048 },
        },
      },
    },
  },
  {
    experience = "appointment", display_name = "Appointment booking",
    actions = {
      {
        name = "book", summary = "Offer appointment slots",
        fields = {
          slots = { type = "int", required = true, max = 10 },
          note = { type = "string", required = false, max = 500 },
        },
      },
      {
        name = "cancel", summary = "Cancel a booked appointment",
        fields = {
          reason = { type = "string", required = false, max = 500 },
        },
      },
    },
  },
}

function _M.experience(name)
  for _, e in ipairs(_M.EXPERIENCES) do
    if e.experience == name then return e end
  end
end

return _M
