-- model.lua: chats and messages as the reference describes them (api-v3.md
-- section 5), shared by the chats, messages and polls handlers.
--
-- Stored records are the public objects plus a few private fields whose
-- names start with "_" (the chat's sending number, whether we left it, ...);
-- public() drops those before a record is sent.

-- luacheck: std ngx_lua

local json = require("json")
local C = require("common")
local config = require("config")
local delivery = require("delivery")

local lower, find, sort, concat = string.lower, string.find, table.sort, table.concat
local type, pairs, ipairs = type, pairs, ipairs

local _M = {}

local null = json.null
local array = json.array

-- A copy of rec without its private "_" fields (arrays stay arrays).
function _M.public(rec)
  local out = {}
  for k, v in pairs(rec) do
    if type(k) ~= "string" or k:sub(1, 1) ~= "_" then out[k] = v end
  end
  if json.is_array(rec) then out = array(out) end
  return out
end

-- Handles and chats -------------------------------------------------------------

-- ChatHandle {id, handle, joined_at, service, is_me, left_at, status}.
function _M.new_handle(handle, is_me, now)
  return {
    id = C.uuid(), handle = handle, joined_at = now, service = "iMessage",
    is_me = is_me, left_at = null, status = "active",
  }
end

function _M.me(chat)
  for _, h in ipairs(chat.handles) do
    if h.is_me == true then return h end
  end
end

-- The other participants' handles (active ones unless all is true).
function _M.others(chat, all)
  local out = array()
  for _, h in ipairs(chat.handles) do
    if h.is_me ~= true and (all or h.status == "active") then out[#out + 1] = h.handle end
  end
  return out
end

-- Index key of a recipient set (order-independent): POST /v3/messages reuses
-- the newest chat with the same set.
function _M.set_key(handles)
  local t = {}
  for i, h in ipairs(handles) do t[i] = lower(h) end
  sort(t)
  return "chatset:" .. concat(t, ",")
end

local HEALTH_DOC = "https://docs.linqapp.com/guides/chats/chat-health"

-- Creates, stores and lists a chat from `from` to the handles in `to`.
function _M.create_chat(st, from, to)
  local now = C.iso()
  local handles = array({ _M.new_handle(from, true, now) })
  for _, h in ipairs(to) do handles[#handles + 1] = _M.new_handle(h, false, now) end
  local chat = {
    id = C.uuid(), created_at = now, updated_at = now, display_name = null,
    handles = handles,
    health_status = { doc_url = HEALTH_DOC, status = "HEALTHY", updated_at = now },
    is_archived = false, is_group = #to > 1, group_chat_icon = null,
    service = "iMessage",
    _from = from, _left = false, _location = false,
  }
  st:put("chat", chat.id, chat)
  st:append("chats", chat.id)
  st:kset(_M.set_key(to), chat.id)
  delivery.queue(st, "chat.created", from, function() return _M.chat(chat) end)
  return chat
end

-- Chat (GET /v3/chats/{id}, list items).
function _M.chat(rec)
  return _M.public(rec)
end

-- The chat or 404/2001.
function _M.need_chat(st, id)
  local chat = st:get("chat", id)
  if not chat then C.not_found(2001) end
  return chat
end

-- Interaction endpoints refuse a chat we left (409/2013).
function _M.need_active_chat(st, id)
  local chat = _M.need_chat(st, id)
  if chat._left then C.fail(409, 2013) end
  return chat
end

-- A direct chat with a blocked handle cannot be written to (403/2026).
function _M.check_blocked(st, recipients)
  if #recipients == 1 and st:get("blocked", lower(recipients[1])) then
    C.fail(403, 2026, "Recipient is blocked: " .. recipients[1])
  end
end

-- Message content ------------------------------------------------------------------

local SERVICES = { iMessage = true, SMS = true, RCS = true }
local EFFECT_TYPES = { screen = true, bubble = true }

local function part_error(i, why)
  C.fail(400, 1004, "Invalid message content: parts[" .. (i - 1) .. "] " .. why)
end

local function media_part(st, p, i)
  local url, att_id = p.url, p.attachment_id
  local has_url, has_att = C.present(url), C.present(att_id)
  if has_url == has_att then part_error(i, "needs exactly one of url, attachment_id") end
  if has_att then
    if type(att_id) ~= "string" then part_error(i, "attachment_id must be a string") end
    local att = st:get("attachment", att_id)
    if not att then C.not_found(2003, "Attachment not found: " .. att_id) end
    if att.status ~= "complete" then C.fail(404, 2007, "Attachment not ready: " .. att_id) end
    return {
      type = "media", id = att.id, filename = att.filename, mime_type = att.content_type,
      size_bytes = att.size_bytes, url = att.download_url, reactions = null,
    }
  end
  if not C.is_https(url) then part_error(i, "url must be an https URL") end
  return {
    type = "media", id = C.uuid(), filename = C.basename(url),
    mime_type = "application/octet-stream", size_bytes = 0, url = url, reactions = null,
  }
end

-- Validates a request Part list; returns PartResponse objects.
local function parts_of(st, parts)
  if not json.is_array(parts) or #parts == 0 then
    C.fail(400, 1004, "Invalid message content: parts must be a non-empty array")
  end
  if #parts > 100 then C.fail(400, 1004, "Invalid message content: more than 100 parts") end
  local out = array()
  local prev
  for i, p in ipairs(parts) do
    if type(p) ~= "table" or json.is_array(p) then part_error(i, "is not an object") end
    local t = C.need(p, "type", "message.parts[" .. (i - 1) .. "].type")
    local r
    if t == "text" then
      local v = C.need(p, "value", "message.parts[" .. (i - 1) .. "].value")
      if type(v) ~= "string" or v == "" then part_error(i, "value must be a non-empty string") end
      if prev == "text" then part_error(i, "follows another text part") end
      r = { type = "text", value = v, reactions = null }
      if C.present(p.text_decorations) then r.text_decorations = p.text_decorations end
      if C.present(p.mention) then r.mention = p.mention end
    elseif t == "media" then
      r = media_part(st, p, i)
    elseif t == "link" then
      local v = C.need(p, "value", "message.parts[" .. (i - 1) .. "].value")
      if type(v) ~= "string" or v == "" then part_error(i, "value must be a non-empty string") end
      if #parts > 1 then part_error(i, "a link must be the only part") end
      r = { type = "link", value = v, reactions = null }
    elseif t == "imessage_app" then
      if #parts > 1 then C.fail(400, 1008, "Invalid iMessage app message: must be the only part") end
      local app = C.need(p, "app", "message.parts[0].app")
      if type(app) ~= "table" or type(app.bundle_id) ~= "string"
        or type(app.name) ~= "string" or type(app.team_id) ~= "string" then
        C.fail(400, 1008, "Invalid iMessage app message: app needs bundle_id, name, team_id")
      end
      local layout = C.need(p, "layout", "message.parts[0].layout")
      if type(layout) ~= "table" or json.is_array(layout) then
        C.fail(400, 1008, "Invalid iMessage app message: layout must be an object")
      end
      r = {
        type = "imessage_app", app = app, layout = layout,
        url = C.present(p.url) and p.url or null, reactions = null,
        fallback_text = C.present(p.fallback_text) and p.fallback_text or null,
      }
    elseif t == "app_clip" then
      local v = C.need(p, "value", "message.parts[" .. (i - 1) .. "].value")
      if type(v) ~= "string" then part_error(i, "value must be a string") end
      r = { type = "app_clip", value = v, reactions = null }
    else
      part_error(i, "has an unknown type")
    end
    out[#out + 1] = r
    prev = t
  end
  return out
end

-- Validates a MessageContent (`message` of the send operations). opts.new_chat:
-- the first message of POST /v3/chats, which may not hold a link (400/1005).
-- Returns the checked content: parts, effect, preferred_service, reply_to,
-- idempotency_key, experience.
function _M.content(st, msg, opts)
  if type(msg) ~= "table" or json.is_array(msg) then
    C.fail(400, 1004, "Invalid message content: message must be an object")
  end
  local c = {}
  local has_parts, exp = C.present(msg.parts), msg.experience
  if C.present(exp) then
    if has_parts then C.fail(400, 1004, "Invalid message content: parts and experience together") end
    if type(exp) ~= "table" or type(exp.name) ~= "string" or type(exp.action) ~= "string" then
      C.fail(400, 1001, "Missing required field: message.experience.name/action")
    end
    if not config.experience(exp.name) then C.bad("message.experience.name", "(unknown experience)") end
    c.experience = exp
    c.parts = array()
  else
    C.need(msg, "parts", "message.parts")
    c.parts = parts_of(st, msg.parts)
  end
  if opts and opts.new_chat then
    for _, p in ipairs(c.parts) do
      if p.type == "link" or (p.type == "text" and find(lower(p.value), "https?://")) then
        C.fail(400, 1005, "Invalid parameter value: the first message of a new chat may not contain a link")
      end
    end
  end
  if C.present(msg.effect) then
    local e = msg.effect
    if type(e) ~= "table" or (C.present(e.type) and not EFFECT_TYPES[e.type]) then
      C.bad("message.effect")
    end
    c.effect = e
  end
  if C.present(msg.preferred_service) then
    if not SERVICES[msg.preferred_service] then C.bad("message.preferred_service") end
    c.preferred_service = msg.preferred_service
  end
  if C.present(msg.reply_to) then
    local r = msg.reply_to
    if type(r) ~= "table" or type(r.message_id) ~= "string" then
      C.fail(400, 1001, "Missing required field: message.reply_to.message_id")
    end
    if not st:get("msg", r.message_id) then C.not_found(2002, "Message not found: " .. r.message_id) end
    c.reply_to = { message_id = r.message_id, part_index = C.present(r.part_index) and r.part_index or 0 }
  end
  if C.present(msg.idempotency_key) then
    if type(msg.idempotency_key) ~= "string" or msg.idempotency_key == "" then
      C.bad("message.idempotency_key")
    end
    c.idempotency_key = msg.idempotency_key
  end
  return c
end

-- Messages ----------------------------------------------------------------------------

-- Creates, stores and lists a message in chat from checked content.
-- extra: more fields for the record (e.g. _poll).
function _M.create_message(st, chat, content, extra)
  local now = C.iso()
  local me = _M.me(chat)
  local m = {
    id = C.uuid(), chat_id = chat.id, created_at = now, updated_at = now,
    delivery_status = "sent", sent_at = now, delivered_at = null, read_at = null,
    is_from_me = true, parts = content.parts or null,
    effect = content.effect or null, preferred_service = content.preferred_service or null,
    reply_to = content.reply_to or null, service = chat.service,
    from = chat._from, from_handle = me,
    idempotency_key = content.idempotency_key or null,
    _edits = 0,
  }
  if content.experience then m.experience = content.experience end
  if extra then for k, v in pairs(extra) do m[k] = v end end
  st:put("msg", m.id, m)
  st:append("chat_msgs:" .. chat.id, m.id)
  -- Webhooks: sent, then delivered (the stored message itself stays "sent").
  -- A poll's message has no parts and sends no message.* event.
  if m.parts ~= null and delivery.active(st) then
    delivery.queue(st, "message.sent", chat._from,
      function() return _M.message_event(chat, m, "outbound") end)
    delivery.queue(st, "message.delivered", chat._from,
      function() return _M.message_event(chat, m, "outbound", { delivered_at = C.iso() }) end)
  end
  return m
end

-- An inbound message: `sender` (a ChatHandle of the chat, not ours) writes `text`
-- (POST /v3/sim/inbound); queues message.received.
function _M.create_inbound(st, chat, sender, text)
  local now = C.iso()
  local m = {
    id = C.uuid(), chat_id = chat.id, created_at = now, updated_at = now,
    delivery_status = "received", sent_at = now, delivered_at = now, read_at = null,
    is_from_me = false, parts = array({ { type = "text", value = text, reactions = null } }),
    effect = null, preferred_service = null, reply_to = null, service = chat.service,
    from = sender.handle, from_handle = sender, idempotency_key = null, _edits = 0,
  }
  st:put("msg", m.id, m)
  st:append("chat_msgs:" .. chat.id, m.id)
  delivery.queue(st, "message.received", chat._from,
    function() return _M.message_event(chat, m, "inbound") end)
  return m
end

-- Webhook parts: the message's parts without their reactions.
local function event_parts(parts)
  local out = array()
  for i, p in ipairs(parts) do
    local c = {}
    for k, v in pairs(p) do
      if k ~= "reactions" then c[k] = v end
    end
    out[i] = c
  end
  return out
end

-- The data of message.sent|received|read|delivered (MessageEventV2, api-v3.md 6.4);
-- over: fields to change (e.g. delivered_at).
function _M.message_event(chat, m, direction, over)
  local d = {
    id = m.id,
    chat = {
      id = chat.id, health_status = chat.health_status, is_group = chat.is_group,
      owner_handle = _M.me(chat) or null,
    },
    direction = direction, parts = event_parts(m.parts), sender_handle = m.from_handle,
    service = m.service, delivered_at = m.delivered_at, effect = m.effect,
    idempotency_key = m.idempotency_key, preferred_service = m.preferred_service,
    read_at = m.read_at, reply_to = m.reply_to, sent_at = m.sent_at,
  }
  if over then for k, v in pairs(over) do d[k] = v end end
  return d
end

-- SentMessage (responses of the send operations).
function _M.sent(m)
  return {
    id = m.id, created_at = m.created_at, delivery_status = m.delivery_status,
    is_read = false, parts = m.parts, sent_at = m.sent_at, delivered_at = m.delivered_at,
    effect = m.effect, from_handle = m.from_handle, preferred_service = m.preferred_service,
    reply_to = m.reply_to, service = m.service, idempotency_key = m.idempotency_key,
  }
end

-- Message (GET /v3/messages/{id}, list items).
function _M.message(m)
  return {
    id = m.id, chat_id = m.chat_id, created_at = m.created_at,
    delivery_status = m.delivery_status, is_delivered = m.delivered_at ~= null,
    is_from_me = m.is_from_me, is_read = m.read_at ~= null, updated_at = m.updated_at,
    delivered_at = m.delivered_at, effect = m.effect, from = m.from,
    from_handle = m.from_handle, parts = m.parts, preferred_service = m.preferred_service,
    read_at = m.read_at, reply_to = m.reply_to, sent_at = m.sent_at, service = m.service,
  }
end

-- The message or 404/2002.
function _M.need_message(st, id)
  local m = st:get("msg", id)
  if not m then C.not_found(2002) end
  return m
end

return _M
