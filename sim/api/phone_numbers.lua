-- api/phone_numbers.lua: phone numbers (api-v3.md 3.8), reputation audits (4)
-- and GET /v3/available_number.
--
-- The list is the data file, served as is and the same in every namespace;
-- a PUT answers as the API would but does not change the list (the list's
-- fast path in sim.lua is benchmarked and must stay a constant string).

-- luacheck: std ngx_lua

local json = require("json")
local C = require("common")
local config = require("config")
local model = require("model")

local type, ipairs = type, ipairs

local _M = {}

local null = json.null

-- GET /v3/phone_numbers, GET /v3/phonenumbers (deprecated)
function _M.list()
  return 200, config.list_body
end

-- PUT /v3/phone_numbers/{id}: {forwarding_number: string|null}; "" or null clears.
function _M.update(_, p)
  local phone = config.numbers[p.id]
  if not phone then C.not_found(2019) end
  local body = C.json_body()
  local fwd = body.forwarding_number
  if fwd == nil then C.fail(400, 1001, "Missing required field: forwarding_number") end
  if fwd == null or fwd == "" then
    fwd = null
  elseif type(fwd) ~= "string" then
    C.bad("forwarding_number", "(a string or null)")
  end
  return 200, { id = p.id, forwarding_number = fwd, phone_number = phone }
end

-- The partner's number from a path parameter: 400/1002, 404/2019.
local function partner_number(s)
  C.e164(s, "phone_number")
  if not config.partner[s] then C.not_found(2019, "Phone number not found: " .. s) end
  return s
end

-- POST /v3/phone_numbers/{phone_number}/reputation_audit -> 202
-- {audit_id, status: "pending"}; 409/2015 while one is pending for the number.
-- The audit completes when it is first read.
function _M.start_audit(ctx, p)
  local phone = partner_number(p.phone)
  local st = ctx.st
  local id = C.uuid()
  if not st:kadd("audit_pending:" .. phone, id) then
    C.fail(409, 2015, "A reputation audit is already running for " .. phone)
  end
  st:put("audit", id, { audit_id = id, status = "pending", phone = phone, _started = C.iso() })
  return 202, { audit_id = id, status = "pending" }
end

local function report(phone)
  return {
    severity = "low",
    primary_driver = "none",
    drivers = json.array({
      { key = "opt_out_rate", metric = "0.0%", summary = "No opt-outs in the last 30 days" },
      { key = "unhealthy_chats", metric = "0", summary = "No chats flagged unhealthy" },
    }),
    action_items = json.array({
      {
        title = "Keep first messages personal", priority = "low",
        detail = "Greet recipients by name and say why you are writing.",
        expected_impact = "Keeps the reputation HEALTHY",
      },
    }),
    evidence = { unhealthy_chats = json.array(), opt_out_chats = json.array() },
    summary_markdown = "## Reputation audit for " .. phone .. "\n\nNo problems found.",
  }
end

-- GET /v3/phone_numbers/{phone_number}/reputation_audit/{audit_id} -> the
-- complete ReputationAudit (404/4004 for an unknown audit or another number's).
function _M.get_audit(ctx, p)
  local phone = partner_number(p.phone)
  local st = ctx.st
  local audit = st:get("audit", p.audit)
  if not audit or audit.phone ~= phone then
    C.not_found(4004, "Reputation audit not found: " .. p.audit)
  end
  if audit.status == "pending" then
    audit = st:update("audit", p.audit, function(a)
      if a.status == "pending" then
        a.status = "complete"
        a.generated_at = C.iso()
        a.error = null
        a.report = report(phone)
      end
    end)
    st:kdelete("audit_pending:" .. phone)
  end
  return 200, model.public(audit)
end

-- GET /v3/available_number?to=a,b&exclude_from=c -> {phone_number, vcf_url}:
-- the line of the newest chat with exactly these recipients, else the first
-- partner number not excluded (403/2027 when all are excluded).
function _M.available(ctx)
  local to = C.query_list("to") or {}
  for i, h in ipairs(to) do to[i] = C.handle(h, "to") end
  local excluded = {}
  for _, n in ipairs(C.query_list("exclude_from") or {}) do
    excluded[C.e164(n, "exclude_from")] = true
  end
  local pick
  if #to > 0 then
    local chat_id = ctx.st:kget(model.set_key(to))
    local chat = chat_id and ctx.st:get("chat", chat_id)
    if chat and not excluded[chat._from] then pick = chat._from end
  end
  if not pick then
    for _, n in ipairs(config.partner_list) do
      if not excluded[n] then pick = n break end
    end
  end
  if not pick then C.fail(403, 2027, "No eligible sending number (all excluded)") end
  return 200, { phone_number = pick, vcf_url = C.origin() .. "/vcf/" .. pick:sub(2) .. ".vcf" }
end

return _M
