-- api/polls.lua: polls (api-v3.md 4): POST /v3/chats/{id}/polls creates a
-- message that carries a poll; GET /v3/messages/{id}/poll, .../poll/options,
-- .../poll/votes read and change it. Answers are PollEnvelope objects.

-- luacheck: std ngx_lua

local json = require("json")
local C = require("common")
local model = require("model")
local idem = require("idem")

local type, ipairs = type, ipairs

local _M = {}

local array = json.array

local function envelope(m)
  local poll = m._poll
  local voters = {}
  local n = 0
  for _, o in ipairs(poll.options) do
    for _, v in ipairs(o.voters) do
      local h = type(v.handle) == "table" and v.handle.handle or v.handle
      if not voters[h] then voters[h] = true n = n + 1 end
    end
  end
  return {
    chat_id = m.chat_id, created_at = poll.created_at, message_id = m.id,
    poll = { options = poll.options, total_voters = n },
    reactions = array(), updated_at = poll.updated_at,
  }
end

-- A checked option list: [{text}] with non-empty texts.
local function options(list, label, me, min)
  if not json.is_array(list) or #list < min then
    C.bad(label, "(an array of at least " .. min .. " options)")
  end
  local out = array()
  for i, o in ipairs(list) do
    local where = label .. "[" .. (i - 1) .. "].text"
    if type(o) ~= "table" then C.bad(label .. "[" .. (i - 1) .. "]") end
    local text = C.need(o, "text", where)
    if type(text) ~= "string" or text == "" then C.bad(where) end
    out[i] = {
      option_id = C.uuid(), text = text, can_be_edited = true, creator_handle = me,
      voters = array(),
    }
  end
  return out
end

-- POST /v3/chats/{id}/polls {poll: {options: [{text}] (>= 2), idempotency_key?}}
-- -> 201 PollEnvelope. Idempotent on poll.idempotency_key (scope: this chat).
function _M.create(ctx, p)
  local st = ctx.st
  local chat = model.need_active_chat(st, p.chat)
  local body = C.json_body()
  local scope = "POST /v3/chats/" .. chat.id .. "/polls"
  local rk = type(body.poll) == "table" and body.poll.idempotency_key
  local rs, rb = idem.replay(ctx, scope, type(rk) == "string" and rk ~= "" and rk or nil)
  if rs then return rs, rb end
  local poll = C.need(body, "poll")
  if type(poll) ~= "table" or json.is_array(poll) then C.bad("poll", "(an object)") end
  C.need(poll, "options", "poll.options")
  local now = C.iso()
  local opts = options(poll.options, "poll.options", model.me(chat), 2)
  local key = poll.idempotency_key
  if key ~= nil and (type(key) ~= "string" or key == "") then
    if key ~= json.null then C.bad("poll.idempotency_key") end
    key = nil
  end
  return idem.run(ctx, scope, key, function()
    local m = model.create_message(st, chat, { idempotency_key = key }, {
      _poll = { options = opts, created_at = now, updated_at = now },
    })
    return 201, envelope(m)
  end)
end

local function need_poll(st, id)
  local m = model.need_message(st, id)
  if type(m._poll) ~= "table" then C.not_found(2002, "Poll not found: message " .. id .. " has no poll") end
  return m
end

-- GET /v3/messages/{id}/poll -> PollEnvelope
function _M.get(ctx, p)
  return 200, envelope(need_poll(ctx.st, p.message))
end

-- POST /v3/messages/{id}/poll/options {options: [{text}]} -> PollEnvelope
function _M.add_options(ctx, p)
  local st = ctx.st
  local m = need_poll(st, p.message)
  local body = C.json_body()
  C.need(body, "options")
  local now = C.iso()
  local added = options(body.options, "options", m.from_handle, 1)
  m = st:update("msg", m.id, function(msg)
    for _, o in ipairs(added) do msg._poll.options[#msg._poll.options + 1] = o end
    msg._poll.updated_at = now
  end)
  if not m then C.not_found(2002) end
  return 200, envelope(m)
end

-- POST /v3/messages/{id}/poll/votes {operation: add|remove, option_id} ->
-- PollEnvelope. The voter is our own line (the only voter a partner can be).
function _M.vote(ctx, p)
  local st = ctx.st
  local m = need_poll(st, p.message)
  local body = C.json_body()
  local op = C.need(body, "operation")
  if op ~= "add" and op ~= "remove" then C.bad("operation", "(add or remove)") end
  local option_id = C.need(body, "option_id")
  if type(option_id) ~= "string" then C.bad("option_id") end
  local now = C.iso()
  m = st:update("msg", m.id, function(msg)
    local me = msg.from_handle
    for _, o in ipairs(msg._poll.options) do
      if o.option_id == option_id then
        local voters = array()
        for _, v in ipairs(o.voters) do
          if not (type(v.handle) == "table" and v.handle.is_me == true) then
            voters[#voters + 1] = v
          end
        end
        if op == "add" then voters[#voters + 1] = { handle = me, voted_at = now } end
        o.voters = voters
        msg._poll.updated_at = now
        return
      end
    end
    C.bad("option_id", "(not an option of this poll)")
  end)
  if not m then C.not_found(2002) end
  return 200, envelope(m)
end

return _M
