-- api/messages.lua: sending and reading messages (api-v3.md 3.4, 3.6):
-- POST/GET /v3/chats/{id}/messages, POST /v3/messages, and everything under
-- /v3/messages/{id} except polls (api/polls.lua).

-- luacheck: std ngx_lua

local json = require("json")
local C = require("common")
local config = require("config")
local model = require("model")
local idem = require("idem")
local chats = require("api.chats")

local type, ipairs, tostring = type, ipairs, tostring

local _M = {}

local null = json.null
local array = json.array

-- POST /v3/chats/{id}/messages {message} -> 202 {chat_id, message: SentMessage}.
-- Idempotent on message.idempotency_key (scope: this chat).
function _M.chat_send(ctx, p)
  local st = ctx.st
  local chat = model.need_active_chat(st, p.chat)
  local body = C.json_body()
  local scope = "POST /v3/chats/" .. chat.id .. "/messages"
  local rs, rb = idem.replay(ctx, scope, idem.message_key(body))
  if rs then return rs, rb end
  local content = model.content(st, C.need(body, "message"))
  return idem.run(ctx, scope, content.idempotency_key,
    function()
      model.check_blocked(st, model.others(chat))
      local m = model.create_message(st, chat, content)
      return 202, { chat_id = chat.id, message = model.sent(m) }
    end)
end

local function render_page(items, next_cursor)
  local out = array()
  for i, m in ipairs(items) do out[i] = model.message(m) end
  return 200, { messages = out, next_cursor = next_cursor and tostring(next_cursor) or null }
end

-- GET /v3/chats/{id}/messages?cursor&limit -> {messages, next_cursor}, newest first.
function _M.chat_list(ctx, p)
  local st = ctx.st
  local chat = model.need_chat(st, p.chat)
  local args = C.query()
  local limit = C.limit(args, 20, 100)
  local cursor = chats.cursor(args)
  return render_page(st:page_desc("chat_msgs:" .. chat.id, cursor, limit,
    function(id) return st:get("msg", id) end))
end

-- POST /v3/messages {to, message, exclude_from?} -> 202 MessageCreateResponse.
-- Reuses the newest chat with exactly these recipients (unless its line is
-- excluded or we left it), else a new chat from the first partner number
-- not excluded. Idempotent on the Idempotency-Key header, else on
-- message.idempotency_key; the key is echoed in message.idempotency_key.
function _M.create(ctx)
  local st = ctx.st
  local body = C.json_body()
  local rs, rb = idem.replay(ctx, "POST /v3/messages", idem.header_key() or idem.message_key(body))
  if rs then return rs, rb end
  local to = chats.recipients(body, "to")
  local content = model.content(st, C.need(body, "message"))
  local excluded = {}
  if C.present(body.exclude_from) then
    local ex = body.exclude_from
    if not json.is_array(ex) then C.bad("exclude_from", "(an array)") end
    for _, n in ipairs(ex) do excluded[C.e164(n, "exclude_from")] = true end
  end
  local key = idem.header_key() or content.idempotency_key
  content.idempotency_key = key
  return idem.run(ctx, "POST /v3/messages", key, function()
    model.check_blocked(st, to)
    local prev_id = st:kget(model.set_key(to))
    local prev = prev_id and st:get("chat", prev_id)
    local chat, reason
    local previous = null
    if prev and not prev._left and not excluded[prev._from] then
      chat, reason = prev, "reused_active_chat"
    else
      local from
      for _, n in ipairs(config.partner_list) do
        if not excluded[n] then from = n break end
      end
      if not from then C.fail(403, 2027, "No eligible sending number (all excluded)") end
      chat = model.create_chat(st, from, to)
      -- the old chat's line excluded: a failover; we left it: simply a new chat
      reason = (prev and excluded[prev._from]) and "failover_flagged" or "new_best_number"
      if prev then previous = prev.id end
    end
    local m = model.create_message(st, chat, content)
    local reused = chat == prev
    return 202, {
      chat_id = chat.id, created_new_chat = not reused, from = chat._from,
      from_selection = { reason = reason, reused_existing_chat = reused },
      handles = chat.handles, is_group = chat.is_group, message = model.sent(m),
      service = chat.service, previous_chat_id = previous,
    }
  end)
end

-- GET /v3/messages/{id} -> Message
function _M.get(ctx, p)
  return 200, model.message(model.need_message(ctx.st, p.message))
end

local MAX_EDITS = 5

-- PATCH /v3/messages/{id} {text, part_index?} -> Message. The part must be a
-- text part (400/1005); the sixth edit is refused (409/2015).
function _M.update(ctx, p)
  local st = ctx.st
  model.need_message(st, p.message)
  local body = C.json_body()
  local text = C.need(body, "text")
  if type(text) ~= "string" or text == "" then C.bad("text", "(a non-empty string)") end
  local idx = body.part_index
  if not C.present(idx) then idx = 0 end
  if not C.is_int(idx) or idx < 0 then C.bad("part_index") end
  local m = st:update("msg", p.message, function(m)
    local part = m.parts ~= null and m.parts[idx + 1]
    if not part or part.type ~= "text" then C.bad("part_index", "(no text part there)") end
    if m._edits >= MAX_EDITS then C.fail(409, 2015, "A message can be edited at most 5 times") end
    part.value = text
    m._edits = m._edits + 1
    m.updated_at = C.iso()
  end)
  if not m then C.not_found(2002) end
  return 200, model.message(m)
end

-- DELETE /v3/messages/{id} -> 200, empty body with Content-Type
-- application/json (void). Later reads answer 404/2002.
function _M.delete(ctx, p)
  local st = ctx.st
  model.need_message(st, p.message)
  st:delete("msg", p.message)
  return 200, ""
end

-- GET /v3/messages/{id}/thread?cursor&limit&order -> {messages, next_cursor}:
-- the message and the messages that reply to it; order asc (default) or desc.
function _M.thread(ctx, p)
  local st = ctx.st
  local root = model.need_message(st, p.message)
  local args = C.query()
  local limit = C.limit(args, 20, 100)
  local cursor = chats.cursor(args)
  local order = args.order
  if order == nil or order == "" then order = "asc" end
  if order ~= "asc" and order ~= "desc" then C.bad("order", "(asc or desc)") end
  local list = "chat_msgs:" .. root.chat_id
  local load = function(id) return st:get("msg", id) end
  local keep = function(m)
    return m.id == root.id or (type(m.reply_to) == "table" and m.reply_to.message_id == root.id)
  end
  if order == "asc" then
    return render_page(st:page_asc(list, cursor, limit, load, keep))
  end
  return render_page(st:page_desc(list, cursor, limit, load, keep))
end

local REACTIONS = {
  love = true, like = true, dislike = true, laugh = true, emphasize = true,
  question = true, custom = true, sticker = true,
}

-- POST /v3/messages/{id}/reactions {operation, type, custom_emoji?, part_index?}
-- -> {message, status, trace_id}. Our own reaction is added to / removed from
-- the part's reactions.
function _M.react(ctx, p)
  local st = ctx.st
  model.need_message(st, p.message)
  local body = C.json_body()
  local op = C.need(body, "operation")
  if op ~= "add" and op ~= "remove" then C.bad("operation", "(add or remove)") end
  local rtype = C.need(body, "type")
  if not REACTIONS[rtype] then C.bad("type") end
  local emoji = C.opt_string(body, "custom_emoji")
  if rtype == "custom" and not emoji then C.fail(400, 1001, "Missing required field: custom_emoji") end
  local idx = body.part_index
  if not C.present(idx) then idx = 0 end
  if not C.is_int(idx) or idx < 0 then C.bad("part_index") end
  local m = st:update("msg", p.message, function(m)
    local part = m.parts ~= null and m.parts[idx + 1]
    if not part then C.bad("part_index", "(no such part)") end
    local old = type(part.reactions) == "table" and part.reactions or array()
    local list = array()
    for _, r in ipairs(old) do
      if not (r.is_me == true and r.type == rtype) then list[#list + 1] = r end
    end
    if op == "add" then
      list[#list + 1] = {
        handle = m.from_handle, is_me = true, type = rtype,
        custom_emoji = emoji or null, sticker = null,
      }
    end
    part.reactions = list
    m.updated_at = C.iso()
  end)
  if not m then C.not_found(2002) end
  return 200, {
    message = op == "add" and "Reaction added" or "Reaction removed",
    status = "accepted", trace_id = C.trace_id(),
  }
end

-- POST /v3/messages/{id}/update {layout, fallback_text?, interactive?, url?} ->
-- {chat_id, message: SentMessage}: a new message with the updated card.
-- 400/1008 when the message is not an iMessage app card.
function _M.update_card(ctx, p)
  local st = ctx.st
  local m = model.need_message(st, p.message)
  local body = C.json_body()
  local layout = C.need(body, "layout")
  if type(layout) ~= "table" or json.is_array(layout) then C.bad("layout", "(an object)") end
  local card = m.parts ~= null and m.parts[1]
  if not card or card.type ~= "imessage_app" then
    C.fail(400, 1008, "Invalid iMessage app message: the message is not an app card")
  end
  local chat = model.need_active_chat(st, m.chat_id)
  local part = {
    type = "imessage_app", app = card.app, layout = layout,
    url = C.present(body.url) and body.url or card.url,
    fallback_text = C.present(body.fallback_text) and body.fallback_text or card.fallback_text,
    reactions = null,
  }
  local nm = model.create_message(st, chat, { parts = array({ part }) })
  return 200, { chat_id = chat.id, message = model.sent(nm) }
end

return _M
