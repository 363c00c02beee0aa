-- api/payments.lua: payment requests, providers, payment handles and
-- payments (api-v3.md 4, Go-only operations).
--
-- Not-found codes: 2021 for payment requests (the reference's code); the
-- reference has none for payments, providers and handles, so those use 4004
-- with a specific message. State changes a real user would make happen at once:
-- connecting a provider makes it "ready"; verifying a handle connects it.

-- luacheck: std ngx_lua

local json = require("json")
local C = require("common")
local idem = require("idem")

local type, tostring, tonumber, find, lower =
  type, tostring, tonumber, string.find, string.lower

local _M = {}

local null = json.null
local array = json.array

local PAY = "https://pay.linqapp.com"

-- Payment requests ----------------------------------------------------------------

local MODES = { payment = true, subscription = true }
local RAILS = { stripe = true, natural = true }
local REQUEST_STATUSES = {
  requested = true, authorized = true, succeeded = true, canceled = true,
  expired = true, declined = true,
}

local function positive_int(body, name)
  local v = body[name]
  if not C.present(v) then return nil end
  if not C.is_int(v) or v < 1 then C.bad(name, "(a positive integer)") end
  return v
end

local function currency(v, name)
  if type(v) ~= "string" or not find(v, "^%a%a%a$") then C.bad(name, "(a 3-letter ISO code)") end
  return lower(v)
end

-- POST /v3/payment_requests (Idempotency-Key header) -> 201 PaymentRequest.
-- amount is required unless price_id is given.
function _M.request_create(ctx)
  local st = ctx.st
  local rs, rb = idem.replay(ctx, "POST /v3/payment_requests", idem.header_key())
  if rs then return rs, rb end
  local body = C.json_body()
  local mode = body.mode
  if not C.present(mode) then mode = "payment" end
  if not MODES[mode] then C.bad("mode", "(payment or subscription)") end
  local rail = body.rail
  if not C.present(rail) then rail = "stripe" end
  if not RAILS[rail] then C.bad("rail", "(stripe or natural)") end
  local amount = positive_int(body, "amount")
  local price_id = C.opt_string(body, "price_id")
  if not amount and not price_id then C.fail(400, 1001, "Missing required field: amount") end
  local cur = C.present(body.currency) and currency(body.currency, "currency") or "usd"
  local payer = C.present(body.payer_handle) and C.handle(body.payer_handle, "payer_handle") or null
  local from = C.present(body.from) and C.e164(body.from, "from") or null
  local metadata = body.metadata
  if C.present(metadata) and (type(metadata) ~= "table" or json.is_array(metadata)) then
    C.bad("metadata", "(an object)")
  end
  return idem.run(ctx, "POST /v3/payment_requests", idem.header_key(), function()
    local id = C.uuid()
    local now = C.iso()
    local r = {
      id = id, object = "payment_request", amount = amount or 0, currency = cur,
      checkout_url = PAY .. "/c/" .. id, created_at = now, updated_at = now,
      expires_at = C.iso(24 * 3600), mode = mode, rail = rail, status = "requested",
      description = C.opt_string(body, "description") or null,
      customer_id = C.opt_string(body, "customer_id") or null,
      payer_handle = payer, from = from, price_id = price_id or null,
      quantity = positive_int(body, "quantity") or null,
      metadata = C.present(metadata) and metadata or null,
      interval = null, interval_count = null, paid_at = null, natural = null,
      stripe = null, trial_end = C.present(body.trial_end) and body.trial_end or null,
    }
    st:put("payreq", id, r)
    st:append("payreqs", id)
    return 201, r
  end)
end

local function need_request(st, id)
  local r = st:get("payreq", id)
  if not r then C.not_found(2021) end
  return r
end

-- GET /v3/payment_requests/{id}
function _M.request_get(ctx, p)
  return 200, need_request(ctx.st, p.request)
end

-- GET /v3/payment_requests?limit&offset&status -> {object: "list", data, has_more},
-- newest first, offset paging.
function _M.request_list(ctx)
  local st = ctx.st
  local args = C.query()
  local limit = C.limit(args, 20, 100)
  local offset = args.offset
  if offset == nil or offset == "" then
    offset = 0
  else
    offset = type(offset) == "string" and find(offset, "^%d+$") and #offset < 10 and tonumber(offset)
    if not offset then C.bad("offset", "(an integer >= 0)") end
  end
  local status = args.status
  if status == "" then status = nil end
  if status and not REQUEST_STATUSES[status] then C.bad("status") end
  local data, skipped, more = array(), 0, false
  for i = st:len("payreqs"), 1, -1 do
    local r = st:get("payreq", st:at("payreqs", i))
    if r and (not status or r.status == status) then
      if skipped < offset then
        skipped = skipped + 1
      elseif #data < limit then
        data[#data + 1] = r
      else
        more = true
        break
      end
    end
  end
  return 200, { object = "list", data = data, has_more = more }
end

-- POST /v3/payment_requests/{id}/cancel -> PaymentRequest; 409/2015 unless
-- the request is still "requested".
function _M.request_cancel(ctx, p)
  local st = ctx.st
  need_request(st, p.request)
  local r = st:update("payreq", p.request, function(r)
    if r.status ~= "requested" then
      C.fail(409, 2015, "Payment request is " .. tostring(r.status) .. ", not requested")
    end
    r.status = "canceled"
    r.updated_at = C.iso()
  end)
  return 200, r
end

-- Providers ------------------------------------------------------------------------

local PROVIDERS = { stripe = true, natural = true }

local function need_provider(name)
  if not PROVIDERS[name] then C.not_found(4004, "Payment provider not found: " .. name) end
  return name
end

-- GET /v3/payments/providers/{provider} -> {status}: "disabled" until connected,
-- then "ready".
function _M.provider_get(ctx, p)
  local name = need_provider(p.provider)
  return 200, { status = ctx.st:kget("provider:" .. name) or "disabled" }
end

-- POST /v3/payments/providers/{provider}/connect {return_url} ->
-- {hosted_url, session_id, status: "onboarding"}
function _M.provider_connect(ctx, p)
  local name = need_provider(p.provider)
  local body = C.json_body()
  local url = C.need(body, "return_url")
  if not C.is_https(url) and not (type(url) == "string" and find(url, "^http://")) then
    C.bad("return_url", "(a URL)")
  end
  local session = "sess_" .. C.random_hex(24)
  ctx.st:kset("provider:" .. name, "ready")
  return 200, {
    hosted_url = PAY .. "/onboard/" .. name .. "/" .. session, session_id = session,
    status = "onboarding",
  }
end

-- Payment handles ------------------------------------------------------------------
-- PaymentHandleConnection {connect_id?, status: not_connected|pending|connected|revoked}

local function connection(st, handle)
  return st:get("phandle", handle) or { status = "not_connected" }
end

-- POST /v3/payments/handles/{handle}/connect -> {connect_id, status: "pending"}
function _M.handle_connect(ctx, p)
  local handle = C.handle(p.handle, "handle")
  local conn = { connect_id = C.uuid(), status = "pending", handle = handle }
  ctx.st:put("phandle", handle, conn)
  return 200, conn
end

-- GET /v3/payments/handles/{handle}/connection
function _M.handle_connection(ctx, p)
  local handle = C.handle(p.handle, "handle")
  return 200, connection(ctx.st, handle)
end

-- DELETE /v3/payments/handles/{handle}/connection -> {status: "revoked"};
-- 404/4004 when the handle was never connected.
function _M.handle_revoke(ctx, p)
  local handle = C.handle(p.handle, "handle")
  local conn = ctx.st:get("phandle", handle)
  if not conn then C.not_found(4004, "Payment handle connection not found: " .. handle) end
  conn.status = "revoked"
  ctx.st:put("phandle", handle, conn)
  return 200, conn
end

-- POST /v3/payments/handles/{handle}/verify {code, connect_id} -> connected.
-- connect_id must be the pending one (400/1005); code "000000" is wrong (400/1005).
function _M.handle_verify(ctx, p)
  local st = ctx.st
  local handle = C.handle(p.handle, "handle")
  local body = C.json_body()
  local code = C.need(body, "code")
  local connect_id = C.need(body, "connect_id")
  if type(code) ~= "string" or code == "" then C.bad("code") end
  local conn = st:get("phandle", handle)
  if not conn or conn.connect_id ~= connect_id or conn.status ~= "pending" then
    C.bad("connect_id", "(no pending connection with this id)")
  end
  if code == "000000" then C.bad("code", "(wrong verification code)") end
  conn.status = "connected"
  st:put("phandle", handle, conn)
  return 200, conn
end

-- Payments ---------------------------------------------------------------------------

local CANCELABLE = {
  needs_connection = true, connecting = true, awaiting_user_action = true,
  ready = true, authorized = true,
}

-- POST /v3/payments {amount_cents, currency, handle, description?, merchant?,
-- metadata?} (Idempotency-Key header) -> 201 Payment. Status "ready" when the
-- handle is connected, else "needs_connection".
function _M.create(ctx)
  local st = ctx.st
  local rs, rb = idem.replay(ctx, "POST /v3/payments", idem.header_key())
  if rs then return rs, rb end
  local body = C.json_body()
  local amount = C.need(body, "amount_cents")
  local cur = currency(C.need(body, "currency"), "currency")
  local handle = C.handle(C.need(body, "handle"), "handle")
  if not C.is_int(amount) or amount < 1 then C.bad("amount_cents", "(a positive integer)") end
  return idem.run(ctx, "POST /v3/payments", idem.header_key(), function()
    local id = C.uuid()
    local connected = connection(st, handle).status == "connected"
    local pay = {
      id = id, amount_cents = amount, currency = cur, handle = handle,
      description = C.opt_string(body, "description") or null,
      approval_url = PAY .. "/approve/" .. id, attach_url = PAY .. "/attach/" .. id,
      status = connected and "ready" or "needs_connection",
    }
    if C.present(body.merchant) then pay.merchant = body.merchant end
    if C.present(body.metadata) then pay.metadata = body.metadata end
    st:put("payment", id, pay)
    return 201, pay
  end)
end

local function need_payment(st, id)
  local pay = st:get("payment", id)
  if not pay then C.not_found(4004, "Payment not found: " .. id) end
  return pay
end

-- GET /v3/payments/{id}
function _M.get(ctx, p)
  return 200, need_payment(ctx.st, p.payment)
end

-- POST /v3/payments/{id}/cancel -> Payment; 409/2015 once it is final.
function _M.cancel(ctx, p)
  local st = ctx.st
  need_payment(st, p.payment)
  local pay = st:update("payment", p.payment, function(pay)
    if not CANCELABLE[pay.status] then
      C.fail(409, 2015, "Payment is " .. tostring(pay.status) .. " and cannot be canceled")
    end
    pay.status = "canceled"
  end)
  return 200, pay
end

-- GET /v3/payments/{id}/credentials -> {handoff}; 409/2015 unless ready or authorized.
function _M.credentials(ctx, p)
  local pay = need_payment(ctx.st, p.payment)
  if pay.status ~= "ready" and pay.status ~= "authorized" then
    C.fail(409, 2015, "Payment is " .. tostring(pay.status) .. "; credentials need a ready payment")
  end
  return 200, {
    handoff = {
      card_ref = "card_" .. C.random_hex(16), fetch_url = PAY .. "/handoff/" .. pay.id,
      provider = "stripe", user_token = "utok_" .. C.random_hex(24),
    },
  }
end

return _M
