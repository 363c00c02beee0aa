-- api/chats.lua: chats and what is done to one chat (api-v3.md 3.1 - 3.5,
-- background from 4): create, list, get, update, read, leave, contact card,
-- voice memo, participants, typing, location, background. Sending and
-- listing messages are in api/messages.lua, polls in api/polls.lua.

-- luacheck: std ngx_lua

local json = require("json")
local C = require("common")
local config = require("config")
local model = require("model")
local idem = require("idem")

local type, ipairs, tostring, tonumber, find, lower =
  type, ipairs, tostring, tonumber, string.find, string.lower

local _M = {}

local null = json.null
local array = json.array

-- The recipients of a create: a non-empty array of E.164 numbers or emails
-- (duplicates dropped).
function _M.recipients(body, name)
  local to = C.need_array(body, name)
  if #to == 0 then C.bad(name, "(at least one recipient)") end
  local out, seen = array(), {}
  for i, h in ipairs(to) do
    h = C.handle(h, name .. "[" .. (i - 1) .. "]")
    if not seen[h] then
      seen[h] = true
      out[#out + 1] = h
    end
  end
  return out
end

-- POST /v3/chats {from, to, message} -> 201 {chat: {..., message: SentMessage}}.
-- Always a new chat (POST /v3/messages is the one that reuses chats).
-- Idempotent on message.idempotency_key.
function _M.create(ctx)
  local st = ctx.st
  local body = C.json_body()
  local rs, rb = idem.replay(ctx, "POST /v3/chats", idem.message_key(body))
  if rs then return rs, rb end
  local from = C.e164(C.need(body, "from"), "from")
  local to = _M.recipients(body, "to")
  local content = model.content(st, C.need(body, "message"), { new_chat = true })
  if not config.partner[from] then
    C.fail(403, 2006, "Phone number permission denied: " .. from .. " is not one of your numbers")
  end
  return idem.run(ctx, "POST /v3/chats", content.idempotency_key, function()
    model.check_blocked(st, to)
    local chat = model.create_chat(st, from, to)
    local m = model.create_message(st, chat, content)
    return 201, {
      chat = {
        id = chat.id, display_name = chat.display_name, handles = chat.handles,
        health_status = chat.health_status, is_group = chat.is_group,
        message = model.sent(m), service = chat.service,
      },
    }
  end)
end

-- A cursor query parameter: nil, or the decimal index it holds (400/1005).
function _M.cursor(args)
  local c = args.cursor
  if c == nil or c == "" then return nil end
  if type(c) ~= "string" or not find(c, "^[1-9]%d*$") or #c > 12 then C.bad("cursor") end
  return tonumber(c)
end

local function has_handle(chat, handle)
  for _, h in ipairs(chat.handles) do
    if h.is_me ~= true and lower(h.handle) == handle then return true end
  end
  return false
end

-- GET /v3/chats?cursor&limit&from&to -> {chats, next_cursor}, newest first.
function _M.list(ctx)
  local st = ctx.st
  local args = C.query()
  local limit = C.limit(args, 20, 100)
  local cursor = _M.cursor(args)
  local from = args.from
  if from == "" then from = nil end
  if from then C.e164(from, "from") end
  local to = args.to
  if to == "" then to = nil end
  if to then to = C.handle(to, "to") end
  local items, next_cursor = st:page_desc("chats", cursor, limit,
    function(id) return st:get("chat", id) end,
    function(chat)
      return (not from or chat._from == from) and (not to or has_handle(chat, to))
    end)
  local out = array()
  for i, chat in ipairs(items) do out[i] = model.chat(chat) end
  return 200, { chats = out, next_cursor = next_cursor and tostring(next_cursor) or null }
end

-- GET /v3/chats/{id} -> Chat
function _M.get(ctx, p)
  return 200, model.chat(model.need_chat(ctx.st, p.chat))
end

-- PUT /v3/chats/{id} {display_name?, group_chat_icon?} -> {chat_id, status};
-- group chats only (409/1006).
function _M.update(ctx, p)
  local st = ctx.st
  local chat = model.need_chat(st, p.chat)
  local body = C.json_body()
  local name = C.opt_string(body, "display_name")
  local icon = C.opt_string(body, "group_chat_icon")
  if icon and not C.is_https(icon) then C.bad("group_chat_icon", "(an https URL)") end
  if not chat.is_group then C.fail(409, 1006) end
  if chat._left then C.fail(409, 2013) end
  st:update("chat", chat.id, function(c)
    if name then c.display_name = name end
    if icon then c.group_chat_icon = icon end
    c.updated_at = C.iso()
  end)
  return 200, { chat_id = chat.id, status = "accepted" }
end

-- POST /v3/chats/{id}/read -> 204 (void)
function _M.read(ctx, p)
  model.need_chat(ctx.st, p.chat)
  return 204, ""
end

-- POST /v3/chats/{id}/leave -> {message, status, trace_id}; group chats only
-- (409/2016); afterwards the interaction endpoints answer 409/2013.
function _M.leave(ctx, p)
  local st = ctx.st
  local chat = model.need_chat(st, p.chat)
  if not chat.is_group then C.fail(409, 2016) end
  if chat._left then C.fail(409, 2013) end
  st:update("chat", chat.id, function(c)
    local now = C.iso()
    c._left = true
    c.updated_at = now
    local me = model.me(c)
    me.status, me.left_at = "left", now
  end)
  return 200, { message = "Left the chat", status = "accepted", trace_id = C.trace_id() }
end

-- POST /v3/chats/{id}/share_contact_card -> 202, empty body (void)
function _M.share_contact_card(ctx, p)
  model.need_active_chat(ctx.st, p.chat)
  return 202, ""
end

-- POST /v3/chats/{id}/voicememo {voice_memo_url | attachment_id} (exactly one,
-- 400/1001 otherwise) -> 202 {voice_memo: {...}}; also a message in the chat.
function _M.voicememo(ctx, p)
  local st = ctx.st
  local chat = model.need_active_chat(st, p.chat)
  local body = C.json_body()
  local url, att_id = body.voice_memo_url, body.attachment_id
  if C.present(url) == C.present(att_id) then
    C.fail(400, 1001, "Missing required field: exactly one of voice_memo_url, attachment_id")
  end
  if C.present(url) and not C.is_https(url) then C.bad("voice_memo_url", "(an https URL)") end
  local part = C.present(url) and { type = "media", url = url } or
    { type = "media", attachment_id = att_id }
  local content = model.content(st, { parts = array({ part }) })
  model.check_blocked(st, model.others(chat))
  local m = model.create_message(st, chat, content)
  local media = m.parts[1]
  return 202, {
    voice_memo = {
      id = m.id,
      chat = {
        id = chat.id, handles = chat.handles, is_active = true,
        is_group = chat.is_group, service = chat.service,
      },
      created_at = m.created_at, from = chat._from, status = "queued",
      to = model.others(chat),
      voice_memo = {
        id = media.id, filename = media.filename, mime_type = media.mime_type,
        size_bytes = media.size_bytes, url = media.url, duration_ms = null,
      },
      service = chat.service,
    },
  }
end

-- Participants: group chats only (409/2016).
local function participant_change(ctx, p, add)
  local st = ctx.st
  local chat = model.need_active_chat(st, p.chat)
  local body = C.json_body()
  local handle = C.handle(C.need(body, "handle"), "handle")
  if not chat.is_group then C.fail(409, 2016) end
  st:update("chat", chat.id, function(c)
    local now = C.iso()
    for _, h in ipairs(c.handles) do
      if h.is_me ~= true and lower(h.handle) == handle then
        if add then
          if h.status == "active" then C.fail(409, 2015, handle .. " is already a participant") end
          h.status, h.left_at, h.joined_at = "active", null, now
        else
          if h.status ~= "active" then C.fail(409, 2015, handle .. " is not a participant") end
          h.status, h.left_at = "removed", now
        end
        c.updated_at = now
        return
      end
    end
    if not add then C.fail(409, 2015, handle .. " is not a participant") end
    c.handles[#c.handles + 1] = model.new_handle(handle, false, now)
    c.updated_at = now
  end)
  return 200, {
    message = add and "Participant added" or "Participant removed",
    status = "accepted", trace_id = C.trace_id(),
  }
end

-- POST /v3/chats/{id}/participants {handle}
function _M.add_participant(ctx, p) return participant_change(ctx, p, true) end
-- DELETE /v3/chats/{id}/participants {handle} (a DELETE with a JSON body)
function _M.remove_participant(ctx, p) return participant_change(ctx, p, false) end

-- Typing indicators: 204 (void); group chats 403/2011.
local function typing(ctx, p)
  local chat = model.need_active_chat(ctx.st, p.chat)
  if chat.is_group then C.fail(403, 2011, "Typing indicators are not available in group chats") end
  return 204, ""
end
-- POST /v3/chats/{id}/typing
_M.typing_start = typing
-- DELETE /v3/chats/{id}/typing
_M.typing_stop = typing

-- POST /v3/chats/{id}/location/request -> {message, success}; direct chats
-- only (409/2016). Afterwards GET .../location shows every participant.
function _M.location_request(ctx, p)
  local st = ctx.st
  local chat = model.need_active_chat(st, p.chat)
  if chat.is_group then C.fail(409, 2016) end
  st:update("chat", chat.id, function(c) c._location = true end)
  return 200, { message = "Location request sent", success = true }
end

-- GET /v3/chats/{id}/location -> {success, data: FeatureCollection}, sent as
-- application/geo+json (the Accept the SDKs send).
function _M.location(ctx, p)
  local chat = model.need_chat(ctx.st, p.chat)
  local features = array()
  if chat._location then
    for i, h in ipairs(model.others(chat)) do
      features[#features + 1] = {
        type = "Feature",
        geometry = { type = "Point", coordinates = array({ -122.4194 + i / 1000, 37.7749 }) },
        properties = {
          handle = h, address = "1 Market St", locality = "San Francisco",
          updated_at = chat.updated_at,
        },
      }
    end
  end
  return 200, { success = true, data = { type = "FeatureCollection", features = features } },
    "application/geo+json"
end

local BACKGROUNDS = { color = true, dynamic = true, photo = true }

-- POST /v3/chats/{id}/background {type, ...} -> 202, empty body (void)
function _M.background_set(ctx, p)
  local st = ctx.st
  local chat = model.need_active_chat(st, p.chat)
  local body = C.json_body()
  local t = C.need(body, "type")
  if not BACKGROUNDS[t] then C.bad("type", "(color, dynamic or photo)") end
  if t == "photo" then
    local url = C.need(body, "image_url")
    if not C.is_https(url) then C.bad("image_url", "(an https URL)") end
  end
  st:update("chat", chat.id, function(c) c._background = body end)
  return 202, ""
end

-- DELETE /v3/chats/{id}/background -> 200, empty text/plain body (void)
function _M.background_remove(ctx, p)
  local st = ctx.st
  local chat = model.need_active_chat(st, p.chat)
  st:update("chat", chat.id, function(c) c._background = null end)
  return 200, "", "text/plain"
end

return _M
