-- api/contact_card.lua: the partner's contact cards (api-v3.md 3.11), one per
-- phone number. PATCH takes the phone number from the QUERY string.

-- luacheck: std ngx_lua

local json = require("json")
local C = require("common")
local model = require("model")

local ipairs = ipairs

local _M = {}

-- GET /v3/contact_card[?phone_number=] -> {contact_cards: [...]}
function _M.get(ctx)
  local st = ctx.st
  local args = C.query()
  local only = args.phone_number
  if only == "" then only = nil end
  if only then C.e164(only, "phone_number") end
  local out = json.array()
  for i = 1, st:len("cards") do
    local card = st:get("card", st:at("cards", i))
    if card and (not only or card.phone_number == only) then
      out[#out + 1] = model.public(card)
    end
  end
  return 200, { contact_cards = out }
end

-- POST /v3/contact_card {first_name, phone_number, image_url?, last_name?} ->
-- 201 SetContactCard; 409/2014 when an active card exists for the number.
function _M.create(ctx)
  local st = ctx.st
  local body = C.json_body()
  local first = C.need_string(body, "first_name")
  local phone = C.e164(C.need(body, "phone_number"), "phone_number")
  local image = C.opt_string(body, "image_url")
  local last = C.opt_string(body, "last_name")
  local old = st:get("card", phone)
  if old and old.is_active then C.fail(409, 2014) end
  local card = {
    first_name = first, is_active = true, phone_number = phone,
    image_url = image or json.null, last_name = last or json.null,
  }
  st:put("card", phone, card)
  if st:kadd("card_listed:" .. phone, "1") then st:append("cards", phone) end
  return 201, card
end

-- PATCH /v3/contact_card?phone_number=<E.164> {first_name?, image_url?, last_name?}
-- -> SetContactCard; 404/2012 when there is no card.
function _M.update(ctx)
  local st = ctx.st
  local phone = C.query().phone_number
  if phone == nil or phone == "" or phone == true then
    C.fail(400, 1001, "Missing required field: phone_number (query parameter)")
  end
  C.e164(phone, "phone_number")
  if not st:get("card", phone) then C.not_found(2012) end
  local body = C.json_body()
  local fields = {}
  for _, f in ipairs({ "first_name", "image_url", "last_name" }) do
    fields[f] = C.opt_string(body, f)
  end
  if fields.first_name == "" then C.bad("first_name", "(a non-empty string)") end
  local card = st:update("card", phone, function(c)
    for f, v in pairs(fields) do c[f] = v end
  end)
  if not card then C.not_found(2012) end
  return 200, card
end

return _M
