-- api/webhooks.lua: webhook event types and subscriptions (api-v3.md 3.9).
-- The signing secret ("whsec_" + base64 of 32 random bytes) is only in the
-- create response; the subscription keeps it (private field _secret) to sign
-- the deliveries (delivery.lua). target_url: https:// as the API wants, and, in
-- the simulator only, also plain http:// to a loopback host (127.0.0.0/8,
-- localhost). Deliveries go only to loopback targets.

-- luacheck: std ngx_lua

local json = require("json")
local C = require("common")
local config = require("config")
local model = require("model")
local delivery = require("delivery")

local ngx = ngx
local ipairs, unpack = ipairs, unpack

local _M = {}

local null = json.null
local array = json.array

-- GET /v3/webhook-events -> {doc_url, events}
function _M.events()
  return 200, {
    doc_url = "https://docs.linqapp.com/guides/webhooks/events",
    events = array({ unpack(config.WEBHOOK_EVENTS) }),
  }
end

local function events_of(v)
  if not json.is_array(v) or #v == 0 then C.bad("subscribed_events", "(a non-empty array)") end
  local out = array()
  for i, e in ipairs(v) do
    if not config.WEBHOOK_EVENT_SET[e] then
      C.bad("subscribed_events[" .. (i - 1) .. "]", "(not an event type)")
    end
    out[i] = e
  end
  return out
end

-- phone_numbers: an array of E.164 numbers; [] and null mean "no filter" (null).
local function numbers_of(v)
  if v == null then return null end
  if not json.is_array(v) then C.bad("phone_numbers", "(an array or null)") end
  if #v == 0 then return null end
  local out = array()
  for i, n in ipairs(v) do out[i] = C.e164(n, "phone_numbers[" .. (i - 1) .. "]") end
  return out
end

-- https:// anywhere (as the API), or http:// to a loopback host (simulator only).
local function target_of(v)
  if C.is_https(v) then return v end
  local t = delivery.parse_target(v)
  if t and t.scheme == "http" and t.loopback then return v end
  C.bad("target_url", "(an https URL; the simulator also takes http:// to 127.0.0.0/8 or localhost)")
end

-- Each target_url can be used once per account (409/2015).
local function claim_url(st, url, id)
  if not st:kadd("whurl:" .. url, id) then
    C.fail(409, 2015, "target_url is already used by another subscription")
  end
end

-- POST /v3/webhook-subscriptions {subscribed_events, target_url, phone_numbers?}
-- -> 201 WebhookSubscription + signing_secret
function _M.create(ctx)
  local st = ctx.st
  local body = C.json_body()
  local events = events_of(C.need(body, "subscribed_events"))
  local url = target_of(C.need(body, "target_url"))
  local numbers = null
  if body.phone_numbers ~= nil then numbers = numbers_of(body.phone_numbers) end
  local id = C.uuid()
  claim_url(st, url, id)
  local now = C.iso()
  local secret = "whsec_" .. ngx.encode_base64(C.random_bytes(32))
  local sub = {
    id = id, created_at = now, updated_at = now, is_active = true,
    subscribed_events = events, target_url = url, phone_numbers = numbers,
    _secret = secret,
  }
  st:put("webhook", id, sub)
  st:append("webhooks", id)
  local out = model.public(sub)
  out.signing_secret = secret
  return 201, out
end

-- GET /v3/webhook-subscriptions -> {subscriptions}, oldest first
function _M.list(ctx)
  local st = ctx.st
  local out = array()
  for i = 1, st:len("webhooks") do
    local sub = st:get("webhook", st:at("webhooks", i))
    if sub then out[#out + 1] = model.public(sub) end
  end
  return 200, { subscriptions = out }
end

local function need(st, id)
  local sub = st:get("webhook", id)
  if not sub then C.not_found(2010) end
  return sub
end

-- GET /v3/webhook-subscriptions/{id}
function _M.get(ctx, p)
  return 200, model.public(need(ctx.st, p.subscription))
end

-- PUT /v3/webhook-subscriptions/{id} {is_active?, phone_numbers?,
-- subscribed_events?, target_url?} -> WebhookSubscription
function _M.update(ctx, p)
  local st = ctx.st
  local old = need(st, p.subscription)
  local body = C.json_body()
  local active = C.opt_bool(body, "is_active")
  local events = C.present(body.subscribed_events) and events_of(body.subscribed_events)
  local url = C.present(body.target_url) and target_of(body.target_url)
  local numbers
  if body.phone_numbers ~= nil then numbers = numbers_of(body.phone_numbers) end
  if url and url ~= old.target_url then
    claim_url(st, url, old.id)
    st:kdelete("whurl:" .. old.target_url)
  end
  local sub = st:update("webhook", old.id, function(s)
    if active ~= nil then s.is_active = active end
    if events then s.subscribed_events = events end
    if url then s.target_url = url end
    if numbers ~= nil then s.phone_numbers = numbers end
    s.updated_at = C.iso()
  end)
  if not sub then C.not_found(2010) end
  return 200, model.public(sub)
end

-- DELETE /v3/webhook-subscriptions/{id} -> 204 (void)
function _M.delete(ctx, p)
  local st = ctx.st
  local sub = need(st, p.subscription)
  st:delete("webhook", sub.id)
  st:kdelete("whurl:" .. sub.target_url)
  return 204, ""
end

return _M
