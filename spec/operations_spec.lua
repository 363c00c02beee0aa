-- Every operation of the Linq API, table-driven, against the simulator's echo mode.
--
-- The expected values below are written by hand from the contract table of the
-- issue and /work/shared/reference/api-v3.md (1.4 Accept, 1.5 bodies, 1.6 query,
-- 1.7 path escaping, 1.11 idempotency, 3 and 4 the operations), NOT read from
-- linq.operations: a row that only repeated the client's own table could not fail.
local linq = require("linq")
local support = require("support")
local cjson = require("cjson")

local unpack = table.unpack or unpack

local JSON, ANY, GEO = "application/json", "*/*", "application/geo+json"

-- A fresh message content for a row's arguments and another for its expectation.
local function hello()
  return { parts = { { type = "text", value = "Hello" } } }
end

-- One row per operation (67; `phone_numbers` is an alias of `list_phone_numbers`).
--   [1] name, [2] arguments after self, [3] HTTP method, [4] raw path under the base `<sim>/echo`,
--   query  the raw query string (nil: none),
--   body   the JSON body, decoded (nil: no body and no Content-Type),
--   accept the Accept header (nil: application/json),
--   void   returns {} for any 2xx (the echo is then read back from the log/<ID> route),
--   idem   where the generated idempotency key goes: "message" / "poll" (in the body) or "header".
-- Ids with characters to escape: "a b/c?d" -> a%20b%2Fc%3Fd, "é" -> %C3%A9, "%" -> %25, "+1555" and
-- "user@example.com" stay (reference 1.7: only runs outside [A-Za-z0-9-._~!$&'()*+,;=:@] are encoded).
local ROWS = {
  -- phone numbers
  { "list_phone_numbers", {}, "GET", "/v3/phone_numbers" },
  { "update_phone_number", { "a b/c?d", { forwarding_number = "+15551234567" } },
    "PUT", "/v3/phone_numbers/a%20b%2Fc%3Fd", body = { forwarding_number = "+15551234567" } },
  { "start_reputation_audit", { "+15551234567" },
    "POST", "/v3/phone_numbers/+15551234567/reputation_audit" },
  { "get_reputation_audit", { "+1555", "é" },
    "GET", "/v3/phone_numbers/+1555/reputation_audit/%C3%A9" },
  { "get_available_number", { { to = { "+14155550001" }, exclude_from = { "+12025551234" } } },
    "GET", "/v3/available_number", query = "exclude_from=%2B12025551234&to=%2B14155550001" },
  -- chats
  { "create_chat", { { from = "+12052535597", to = { "+12052532136" }, message = hello() } },
    "POST", "/v3/chats", idem = "message",
    body = { from = "+12052535597", to = { "+12052532136" }, message = hello() } },
  { "list_chats", { { limit = 20, cursor = "abc" } }, "GET", "/v3/chats", query = "cursor=abc&limit=20" },
  { "get_chat", { "chat 1" }, "GET", "/v3/chats/chat%201" },
  { "update_chat", { "c1", { display_name = "Team" } }, "PUT", "/v3/chats/c1",
    body = { display_name = "Team" } },
  { "mark_chat_read", { "c1" }, "POST", "/v3/chats/c1/read", accept = ANY, void = true },
  { "leave_chat", { "c1" }, "POST", "/v3/chats/c1/leave" },
  { "share_contact_card", { "c1" }, "POST", "/v3/chats/c1/share_contact_card", accept = ANY, void = true },
  { "send_voice_memo", { "c1", { voice_memo_url = "https://x.test/m.m4a" } }, "POST", "/v3/chats/c1/voicememo",
    body = { voice_memo_url = "https://x.test/m.m4a" } },
  { "add_participant", { "c1", { handle = "+15551234567" } }, "POST", "/v3/chats/c1/participants",
    body = { handle = "+15551234567" } },
  { "remove_participant", { "c1", { handle = "a@b.com" } }, "DELETE", "/v3/chats/c1/participants",
    body = { handle = "a@b.com" } },
  { "start_typing", { "c1" }, "POST", "/v3/chats/c1/typing", accept = ANY, void = true },
  { "stop_typing", { "c1" }, "DELETE", "/v3/chats/c1/typing", accept = ANY, void = true },
  { "send_message", { "a b/c?d", { message = hello() } }, "POST", "/v3/chats/a%20b%2Fc%3Fd/messages",
    idem = "message", body = { message = hello() } },
  { "list_chat_messages", { "c1", { limit = 5 } }, "GET", "/v3/chats/c1/messages", query = "limit=5" },
  { "request_location", { "c1" }, "POST", "/v3/chats/c1/location/request" },
  { "get_location", { "c1" }, "GET", "/v3/chats/c1/location", accept = GEO },
  { "create_poll", { "c1", { poll = { options = { { text = "A" }, { text = "B" } } } } },
    "POST", "/v3/chats/c1/polls", idem = "poll",
    body = { poll = { options = { { text = "A" }, { text = "B" } } } } },
  { "set_chat_background", { "c1", { type = "color", shades = { "#ff0000", "#00ff00" } } },
    "POST", "/v3/chats/c1/background", accept = ANY, void = true,
    body = { type = "color", shades = { "#ff0000", "#00ff00" } } },
  { "remove_chat_background", { "c1" }, "DELETE", "/v3/chats/c1/background", accept = ANY, void = true },
  -- messages
  { "create_message", { { to = { "+15551234567" }, message = hello() } }, "POST", "/v3/messages",
    idem = "header", body = { to = { "+15551234567" }, message = hello() } },
  { "get_message", { "a b/c?d#e+f" }, "GET", "/v3/messages/a%20b%2Fc%3Fd%23e+f" },
  { "edit_message", { "m1", { text = "fixed", part_index = 0 } }, "PATCH", "/v3/messages/m1",
    body = { text = "fixed", part_index = 0 } },
  { "delete_message", { "m1" }, "DELETE", "/v3/messages/m1", accept = ANY, void = true },
  { "list_message_thread", { "m1", { order = "asc", limit = 10 } }, "GET", "/v3/messages/m1/thread",
    query = "limit=10&order=asc" },
  { "add_reaction", { "m1", { operation = "add", type = "love" } }, "POST", "/v3/messages/m1/reactions",
    body = { operation = "add", type = "love" } },
  { "update_app_card", { "m1", { layout = { caption = "Hi" }, fallback_text = "Hi" } },
    "POST", "/v3/messages/m1/update", body = { layout = { caption = "Hi" }, fallback_text = "Hi" } },
  { "get_poll", { "m1" }, "GET", "/v3/messages/m1/poll" },
  { "add_poll_options", { "m1", { options = { { text = "C" } } } }, "POST", "/v3/messages/m1/poll/options",
    body = { options = { { text = "C" } } } },
  { "vote_in_poll", { "m1", { operation = "add", option_id = "o1" } }, "POST", "/v3/messages/m1/poll/votes",
    body = { operation = "add", option_id = "o1" } },
  -- attachments
  { "create_attachment", { { content_type = "image/png", filename = "a.png", size_bytes = 1024 } },
    "POST", "/v3/attachments", body = { content_type = "image/png", filename = "a.png", size_bytes = 1024 } },
  { "get_attachment", { "50%off" }, "GET", "/v3/attachments/50%25off" },
  { "delete_attachment", { "a1" }, "DELETE", "/v3/attachments/a1", accept = ANY, void = true },
  -- capability
  { "check_imessage", { { address = "a@b.com" } }, "POST", "/v3/capability/check_imessage",
    body = { address = "a@b.com" } },
  { "check_rcs", { { address = "+15551234567", from = "+12025551234" } }, "POST", "/v3/capability/check_rcs",
    body = { address = "+15551234567", from = "+12025551234" } },
  -- contact card
  { "get_contact_card", { { phone_number = "+15551234567" } }, "GET", "/v3/contact_card",
    query = "phone_number=%2B15551234567" },
  { "create_contact_card", { { first_name = "John", phone_number = "+15551234567" } }, "POST", "/v3/contact_card",
    body = { first_name = "John", phone_number = "+15551234567" } },
  { "update_contact_card", { { phone_number = "+15551234567", last_name = "Doe" } }, "PATCH", "/v3/contact_card",
    query = "phone_number=%2B15551234567", body = { last_name = "Doe" } },
  -- webhooks
  { "list_webhook_events", {}, "GET", "/v3/webhook-events" },
  { "create_webhook_subscription", { { target_url = "https://x.test/h", subscribed_events = { "message.sent" } } },
    "POST", "/v3/webhook-subscriptions",
    body = { target_url = "https://x.test/h", subscribed_events = { "message.sent" } } },
  { "list_webhook_subscriptions", {}, "GET", "/v3/webhook-subscriptions" },
  { "get_webhook_subscription", { "s 1" }, "GET", "/v3/webhook-subscriptions/s%201" },
  { "update_webhook_subscription", { "s1", { is_active = false } }, "PUT", "/v3/webhook-subscriptions/s1",
    body = { is_active = false } },
  { "delete_webhook_subscription", { "s1" }, "DELETE", "/v3/webhook-subscriptions/s1", accept = ANY, void = true },
  -- payments
  { "create_payment_request", { { amount = 500, currency = "usd" } }, "POST", "/v3/payment_requests",
    idem = "header", body = { amount = 500, currency = "usd" } },
  { "get_payment_request", { "pr1" }, "GET", "/v3/payment_requests/pr1" },
  { "list_payment_requests", { { limit = 10, offset = 20, status = "requested" } }, "GET", "/v3/payment_requests",
    query = "limit=10&offset=20&status=requested" },
  { "cancel_payment_request", { "pr1" }, "POST", "/v3/payment_requests/pr1/cancel" },
  { "get_payment_provider", { "stripe" }, "GET", "/v3/payments/providers/stripe" },
  { "connect_payment_provider", { "stripe", { return_url = "https://x.test/back" } },
    "POST", "/v3/payments/providers/stripe/connect", body = { return_url = "https://x.test/back" } },
  { "connect_payment_handle", { "+1555" }, "POST", "/v3/payments/handles/+1555/connect" },
  { "get_payment_handle_connection", { "user@example.com" },
    "GET", "/v3/payments/handles/user@example.com/connection" },
  { "revoke_payment_handle", { "+1555" }, "DELETE", "/v3/payments/handles/+1555/connection" },
  { "verify_payment_handle", { "+1555", { code = "123456", connect_id = "cn1" } },
    "POST", "/v3/payments/handles/+1555/verify", body = { code = "123456", connect_id = "cn1" } },
  { "create_payment", { { amount_cents = 1999, currency = "usd", handle = "+1555" } }, "POST", "/v3/payments",
    idem = "header", body = { amount_cents = 1999, currency = "usd", handle = "+1555" } },
  { "get_payment", { "p1" }, "GET", "/v3/payments/p1" },
  { "cancel_payment", { "p1" }, "POST", "/v3/payments/p1/cancel" },
  { "get_payment_credentials", { "p!$&'()*+,;=:@~._-" }, "GET", "/v3/payments/p!$&'()*+,;=:@~._-/credentials" },
  -- blocked handles
  { "list_blocked_handles", {}, "GET", "/v3/blocked_handles" },
  { "block_handle", { { handle = "+1555", reason = "spam" } }, "POST", "/v3/blocked_handles",
    body = { handle = "+1555", reason = "spam" } },
  { "unblock_handle", { { handle = "+1555" } }, "DELETE", "/v3/blocked_handles", accept = ANY, void = true,
    body = { handle = "+1555" } },
  -- experiences
  { "list_experiences", {}, "GET", "/v3/experiences" },
  { "get_experience", { "é" }, "GET", "/v3/experiences/%C3%A9" },
}

-- Operations whose fields are all optional: called without params they still send
-- a JSON body `{}` (reference 1.5), or no query at all.
local EMPTY_BODY = {
  { "update_chat", { "c1" } },
  { "send_voice_memo", { "c1" } },
  { "update_webhook_subscription", { "s1" } },
  { "create_payment_request", {} },
}
local NO_QUERY = {
  { "get_available_number", {} },
  { "list_chats", {} },
  { "list_chat_messages", { "c1" } },
  { "list_message_thread", { "m1" } },
  { "get_contact_card", {} },
  { "list_payment_requests", {} },
}

local UUID4 = "^" .. ("%x"):rep(8) .. "%-" .. ("%x"):rep(4) .. "%-4" .. ("%x"):rep(3) ..
              "%-[89ab]" .. ("%x"):rep(3) .. "%-" .. ("%x"):rep(12) .. "$"

local function copy(t)
  if type(t) ~= "table" then return t end
  local c = {}
  for k, v in pairs(t) do c[copy(k)] = copy(v) end
  return c
end

local function echo_client(opts)
  opts = opts or {}
  opts.mode = opts.mode or "echo"
  return support.client(opts)
end

-- The requests the simulator recorded for id=<ID> (log/<ID>), or nil when this
-- simulator has no such route (it is not in every version of sim/).
local function logged(id)
  local c = linq.new{ api_key = support.key, base_url = support.url, max_retries = 0 }
  local ok, res = pcall(c.request, c, "GET", "/log/" .. id)
  c:close()
  if ok and type(res) == "table" and type(res.requests) == "table" then return res.requests end
  return nil
end
local NO_LOG = "the simulator has no log/<ID> route (sim/README.md): this part is not checked"

-- The JSON body a request carried, decoded (nil when it had none).
local function body_of(seen)
  if seen.body == linq.null then return nil end
  return cjson.decode(seen.body)
end

-- The idempotency key a request carried, where the operation puts it.
local function key_of(seen, idem)
  if idem == "header" then return seen.headers["idempotency-key"] end
  local body = body_of(seen)
  return body and body[idem] and body[idem].idempotency_key
end

describe("operations", function()
  it("have a row each here, exactly the names in linq.operations (aliases aside)", function()
    local rows, ops = {}, {}
    for _, row in ipairs(ROWS) do
      assert.is_nil(rows[row[1]], "two rows for " .. row[1])
      rows[row[1]] = true
    end
    for name, op in pairs(linq.operations) do
      if op.alias_of == nil then ops[name] = true end
    end
    local missing, extra = {}, {}
    for name in pairs(ops) do
      if not rows[name] then missing[#missing + 1] = name end
    end
    for name in pairs(rows) do
      if not ops[name] then extra[#extra + 1] = name end
    end
    table.sort(missing)
    table.sort(extra)
    assert.same({}, missing, "operations without a row: " .. table.concat(missing, ", "))
    assert.same({}, extra, "rows without an operation: " .. table.concat(extra, ", "))
    assert.equal(67, #ROWS)
  end)

  it("keep phone_numbers as an alias of list_phone_numbers", function()
    local client = echo_client()
    local res = client:phone_numbers()
    assert.equal("GET", res.method)
    assert.equal("/echo/v3/phone_numbers", res.path)
    client:close()
  end)

  for _, row in ipairs(ROWS) do
    local name, args, method, path = row[1], row[2], row[3], row[4]
    it(name .. ": " .. method .. " " .. path, function()
      local id = support.id()
      local client = echo_client{ mode = row.void and ("echo/id=" .. id) or "echo" }
      local res, meta = client[name](client, unpack(args))
      client:close()
      assert.equal(200, meta.status)
      if row.idem then
        assert.matches(UUID4, meta.idempotency_key)
      else
        assert.is_nil(meta.idempotency_key)
      end

      local seen, prefix = res, "/echo"
      if row.void then
        assert.same({}, res)  -- even though the echo answered with JSON
        local log = logged(id)
        if not log then return pending(NO_LOG) end
        assert.equal(1, #log)
        seen, prefix = log[1], "/echo/id=" .. id
      end

      assert.equal(method, seen.method)
      assert.equal(prefix .. path, seen.path)
      assert.equal(row.query or "", seen.query)
      assert.equal(row.accept or JSON, seen.headers.accept)
      if row.body then
        assert.equal(JSON, seen.headers["content-type"])
        local expected = copy(row.body)
        if row.idem == "message" or row.idem == "poll" then
          expected[row.idem].idempotency_key = meta.idempotency_key
        end
        assert.same(expected, body_of(seen))
      else
        assert.is_nil(seen.headers["content-type"])
        assert.equal(linq.null, seen.body)
      end
      if row.idem == "header" then
        assert.equal(meta.idempotency_key, seen.headers["idempotency-key"])
      else
        assert.is_nil(seen.headers["idempotency-key"])
      end
    end)
  end

  for _, case in ipairs(EMPTY_BODY) do
    it(case[1] .. " without params sends the body {}", function()
      local client = echo_client()
      local res = client[case[1]](client, unpack(case[2]))
      client:close()
      assert.equal(JSON, res.headers["content-type"])
      assert.equal("{}", res.body)
    end)
  end

  for _, case in ipairs(NO_QUERY) do
    it(case[1] .. " without params sends no query", function()
      local client = echo_client()
      local res = client[case[1]](client, unpack(case[2]))
      client:close()
      assert.equal("", res.query)
      assert.equal("GET", res.method)
    end)
  end
end)

describe("idempotency keys", function()
  -- name, path arguments, params, where the key goes
  local IDEM = {
    { "create_chat", {}, function() return { from = "+12025551234", to = { "+15551230001" }, message = hello() } end,
      "message" },
    { "send_message", { "c1" }, function() return { message = hello() } end, "message" },
    { "create_poll", { "c1" }, function() return { poll = { options = { { text = "A" }, { text = "B" } } } } end,
      "poll" },
    { "create_message", {}, function() return { to = { "+15551230001" }, message = hello() } end, "header" },
    { "create_payment_request", {}, function() return { amount = 500, currency = "usd" } end, "header" },
    { "create_payment", {}, function() return { amount_cents = 100, currency = "usd", handle = "+1555" } end,
      "header" },
  }

  local function call(name, path_args, params, opts)
    local client = echo_client()
    local args = copy(path_args)
    args[#args + 1] = params
    if opts then args[#args + 1] = opts end
    local res, meta = client[name](client, unpack(args))
    client:close()
    return res, meta
  end

  for _, case in ipairs(IDEM) do
    local name, path_args, make, where = case[1], case[2], case[3], case[4]

    it(name .. ": a fresh UUID v4 per call, in " .. where .. ", as meta.idempotency_key", function()
      local params = make()
      local before = copy(params)
      local res1, meta1 = call(name, path_args, params)
      local res2, meta2 = call(name, path_args, params)
      assert.same(before, params)  -- the caller's table is not changed (no key added)
      if where ~= "header" then assert.is_nil(params[where].idempotency_key) end
      local k1, k2 = key_of(res1, where), key_of(res2, where)
      assert.matches(UUID4, k1)
      assert.matches(UUID4, k2)
      assert.equal(meta1.idempotency_key, k1)
      assert.equal(meta2.idempotency_key, k2)
      assert.are_not.equal(k1, k2)
      if where == "header" then
        local body = body_of(res1)
        assert.is_nil(body.idempotency_key)
        assert.is_nil(body["Idempotency-Key"])
        assert.is_nil(res1.body:find(k1, 1, true))
      else
        assert.is_nil(res1.headers["idempotency-key"])
      end
    end)

    it(name .. ": the caller's key is sent unchanged", function()
      local params = make()
      if where == "header" then
        params.idempotency_key = "mine"
      else
        params[where].idempotency_key = "mine"
      end
      local before = copy(params)
      local res, meta = call(name, path_args, params)
      assert.same(before, params)
      assert.equal("mine", key_of(res, where))
      assert.equal("mine", meta.idempotency_key)
      if where == "header" then
        local body = body_of(res)
        assert.is_nil(body.idempotency_key)
        assert.is_nil(res.body:find("mine", 1, true))
      end
    end)

    if where == "header" then
      it(name .. ": an Idempotency-Key in opts.headers is sent unchanged", function()
        local res, meta = call(name, path_args, make(), { headers = { ["Idempotency-Key"] = "mine" } })
        assert.equal("mine", res.headers["idempotency-key"])  -- one header: a second would make a list
        assert.equal("mine", meta.idempotency_key)
      end)
    end
  end

  -- flaky/2/503: two 503s, then the normal API (so the chat must exist there).
  local function retried(name, args)
    local id = support.id()
    local client = support.client{ mode = "flaky/2/503/id=" .. id }
    local _, meta = client[name](client, unpack(args))
    client:close()
    return meta, id
  end

  local function same_key_on_every_attempt(meta, id, where)
    assert.equal(3, meta.attempts)
    assert.matches(UUID4, meta.idempotency_key)
    local log = logged(id)
    if not log then return pending(NO_LOG) end
    assert.equal(3, #log)
    for _, seen in ipairs(log) do
      assert.equal(meta.idempotency_key, key_of(seen, where))
    end
  end

  it("send_message: the same key on every retry", function()
    local api = support.client()
    local created = api:create_chat{ from = "+12025551234", to = { "+15551230001" }, message = hello() }
    api:close()
    local meta, id = retried("send_message", { created.chat.id, { message = hello() } })
    same_key_on_every_attempt(meta, id, "message")
  end)

  it("create_message: the same key on every retry", function()
    local meta, id = retried("create_message", { { to = { "+15551230002" }, message = hello() } })
    same_key_on_every_attempt(meta, id, "header")
  end)
end)

describe("query strings", function()
  it("are sorted and escaped", function()
    local client = echo_client()
    local res = client:list_chats{ limit = 20, from = "+1555", to = "a@b.com" }
    client:close()
    assert.equal("from=%2B1555&limit=20&to=a%40b.com", res.query)
  end)

  it("join a list into one comma-separated parameter", function()
    local client = echo_client()
    local res = client:get_available_number{ to = { "+14155550001", "a@b.com" } }
    client:close()
    assert.equal("to=%2B14155550001%2Ca%40b.com", res.query)
  end)

  it("take update_contact_card's phone_number out of the body", function()
    local client = echo_client()
    local res = client:update_contact_card{ phone_number = "+15551234567", first_name = "John" }
    client:close()
    assert.equal("PATCH", res.method)
    assert.equal("phone_number=%2B15551234567", res.query)
    assert.equal('{"first_name":"John"}', res.body)
  end)
end)

describe("JSON bodies", function()
  it("encode linq.empty_array as []", function()
    local client = echo_client()
    local res = client:update_webhook_subscription("s1", { phone_numbers = linq.empty_array })
    client:close()
    assert.matches('"phone_numbers":[]', res.body, 1, true)
    assert.same({ phone_numbers = {} }, cjson.decode(res.body))
  end)

  it("send 2^53 exactly", function()
    local client = echo_client()
    local res = client:create_attachment{ content_type = "image/png", filename = "a.png",
                                          size_bytes = 9007199254740992 }
    client:close()
    assert.matches("9007199254740992", res.body, 1, true)
  end)
end)

describe("argument errors", function()
  -- A client whose every request would be counted: errors must come before any traffic.
  local client, id
  before_each(function()
    id = support.id()
    client = support.client{ mode = "status/500/id=" .. id, max_retries = 0 }
  end)
  after_each(function()
    client:close()
    assert.equal(0, support.hits(id))
  end)

  -- The error's text, without the "file:line: " of the caller.
  local function message(f, ...)
    return (tostring(support.raises(f, ...)):gsub("^[^:]*:%d+: ", ""))
  end

  it("name the operation and the path parameter", function()
    for _, bad in ipairs({ { nil }, { "" }, { "." }, { ".." }, { 1.5 } }) do
      assert.matches("bad argument #1 to 'get_chat' %(chat_id", message(client.get_chat, client, bad[1]))
    end
    assert.equal(message(function() return client:get_chat("") end),
                 message(function() return client["get_chat"](client, "") end))
  end)

  it("check params", function()
    assert.matches("bad argument #2 to 'send_message' (params.message is required)",
                   message(function() return client:send_message("x") end), 1, true)
    assert.matches("bad argument #2 to 'send_message' (params must be a table",
                   message(function() return client:send_message("x", "hi") end), 1, true)
    assert.matches("params.to must be a list",
                   message(function() return client:create_chat{ from = "+1", to = "+2", message = {} } end),
                   1, true)
    assert.matches("params.limit must be a whole number",
                   message(function() return client:list_chats{ limit = 1.5 } end), 1, true)
  end)

  it("check options and the argument count", function()
    assert.matches("bad argument #2 to 'get_chat' (unknown option 'timout' (did you mean " ..
                   "'timeout'?); the options are: timeout, max_retries, headers)",
                   message(function() return client:get_chat("x", { timout = 1 }) end), 1, true)
    assert.matches("bad argument #3 to 'get_chat'",
                   message(function() return client:get_chat("x", {}, 3) end), 1, true)
  end)

  it("let client:request fill {placeholders} only from params", function()
    assert.has_error(function() client:request("GET", "/v3/chats/{chat_id}", { params = {} }) end)
    assert.has_error(function()
      client:request("GET", "/v3/chats/{chat_id}", { params = { chat_id = "x", other = "y" } })
    end)
    assert.has_error(function() client:request("GET", "/v3/chats", { params = { chat_id = "x" } }) end)
  end)
end)

describe("path parameters", function()
  it("accept whole numbers", function()
    local client = echo_client()
    assert.equal("/echo/v3/chats/42", client:get_chat(42).path)
    client:close()
  end)

  it("fill client:request's {placeholders}, escaped", function()
    local client = echo_client()
    local res = client:request("GET", "/v3/chats/{chat_id}", { params = { chat_id = "a b/c" } })
    client:close()
    assert.equal("/echo/v3/chats/a%20b%2Fc", res.path)
  end)
end)
