-- api/inbound.lua: POST /v3/sim/inbound, a route of the simulator only (the real
-- API has nothing like it): a person in a chat writes to us. The message is
-- stored in the chat (is_from_me false, delivery_status "received") and a
-- message.received webhook (direction "inbound") goes to the subscriptions.
--
-- Body {chat_id, text, from?}: from is the sender's handle, one of the chat's
-- active participants other than us (default: the first of them).
-- 201 {chat_id, message: Message}. Errors: 400/1001 chat_id or text missing,
-- 400/1005 text not a non-empty string or from not a participant, 404/2001 no
-- such chat, 409/2013 a chat we left.

-- luacheck: std ngx_lua

local C = require("common")
local model = require("model")

local type, ipairs, lower = type, ipairs, string.lower

local _M = {}

function _M.inbound(ctx)
  local st = ctx.st
  local body = C.json_body()
  local chat_id = C.need(body, "chat_id")
  if type(chat_id) ~= "string" or chat_id == "" then C.bad("chat_id", "(a non-empty string)") end
  local text = C.need_string(body, "text")
  local from = C.opt_string(body, "from")
  local chat = model.need_active_chat(st, chat_id)
  local sender
  for _, h in ipairs(chat.handles) do
    if h.is_me ~= true and h.status == "active" and (not from or lower(h.handle) == lower(from)) then
      sender = h
      break
    end
  end
  if not sender then C.bad("from", "(not an active participant of the chat)") end
  local m = model.create_inbound(st, chat, sender, text)
  return 201, { chat_id = chat.id, message = model.message(m) }
end

return _M
