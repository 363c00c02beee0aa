-- Webhook deliveries end to end: the simulator signs and POSTs events (sim/delivery.lua)
-- to the example receiver of examples/openresty/webhooks/ (run as it stands, with its
-- port, paths and environment filled in), which verifies them with linq.webhook, refuses
-- forgeries, acknowledges replays once, and answers an incoming message with
-- send_message.  Nothing here is decided by a clock: the specs wait (bounded) for the
-- simulator's webhook-log to have no pending delivery and for the app's counters.
local linq = require("linq")
local cjson = require("cjson")
local support = require("support")
local nginx_app = require("nginx_app")

local FROM = "+12025551234"
local TO = "+14155550123"

-- Waits (at most about `tries` * 0.05 s) until f() is true; returns its last value.
local function until_true(f, tries)
  local v
  for _ = 1, tries or 200 do
    v = f()
    if v then return v end
    support.sleep(0.05)
  end
  return v
end

-- A plain GET of a JSON document (no auth), decoded.
local function get_json(url)
  local out = support.read_command("curl -s --noproxy '*' -m 10 '" .. url .. "'")
  return cjson.decode(out)
end

-- The example's nginx.conf with its port, paths and module folders filled in.
local function example_conf()
  return (nginx_app.read("examples/openresty/webhooks/nginx.conf")
    :gsub("listen 127%.0%.0%.1:8081;", "listen 127.0.0.1:${PORT};")
    :gsub("build/openresty%-webhooks/error%.log", "${PREFIX}/logs/error.log")
    :gsub("build/openresty%-webhooks", "${PREFIX}")
    :gsub("%$prefix/", "${ROOT}/"))
end

local function count_types(deliveries)
  local n = {}
  for _, d in ipairs(deliveries) do n[d.event_type] = (n[d.event_type] or 0) + 1 end
  return n
end

describe("webhook deliveries from the simulator to the OpenResty example", function()
  local ns = "wh-" .. support.id()
  local api, app, sub, secret, poster, chat_id

  -- The simulator's delivery log of our subscription, once nothing is pending.
  local function settled_log(want)
    local log
    until_true(function()
      log = get_json(support.url .. "/webhook-log/" .. sub.id)
      return log.pending == 0 and #log.deliveries >= (want or 0)
    end, 400)
    return log
  end

  local function stats()
    return get_json(app.url .. "/linq/webhooks/stats")
  end

  -- POSTs a raw body with headers to the app's webhook location: the status.
  local function post(body, headers)
    local ok, res, meta = pcall(poster.request, poster, "POST", "/linq/webhooks",
                                { body = body, headers = headers })
    if ok then return meta.status, res end
    assert.is_true(linq.is_error(res), tostring(res))
    return res.status, res
  end

  -- A signed event of our own (type message.read: the simulator never sends one).
  local function signed(webhook_id, ts, marker)
    local body = cjson.encode{
      api_version = "v3", created_at = "2026-01-02T03:04:05.678Z", event_id = support.id(),
      event_type = "message.read", partner_id = "spec", trace_id = "spec",
      webhook_version = "2026-02-03",
      data = { id = "m-" .. marker, direction = "outbound", parts = { { type = "text", value = marker } } },
    }
    return body, {
      ["webhook-id"] = webhook_id, ["webhook-timestamp"] = tostring(ts),
      ["webhook-signature"] = linq.webhook_signature(secret, webhook_id, ts, body),
    }
  end

  setup(function()
    api = support.client{ mode = "ns/" .. ns }
    -- The secret is known only once the subscription exists, the app's port only once
    -- the app runs: subscribe first (to a port where nothing listens), then point the
    -- subscription at the app.
    sub = api:create_webhook_subscription{
      target_url = "http://127.0.0.1:1/not-yet",
      subscribed_events = { "chat.created", "message.sent", "message.delivered", "message.received" },
    }
    secret = sub.signing_secret
    app = nginx_app.start(example_conf(), {
      ready = "/linq/webhooks/stats",
      env = {
        LINQ_WEBHOOK_SECRET = secret,
        LINQ_API_V3_API_KEY = support.key,
        LINQ_API_V3_BASE_URL = support.url .. "/ns/" .. ns,
      },
    })
    api:update_webhook_subscription(sub.id, { target_url = app.url .. "/linq/webhooks" })
    poster = linq.new{ api_key = "unused", base_url = app.url, max_retries = 0, timeout = 10 }
  end)

  teardown(function()
    if poster then poster:close() end
    if api then api:close() end
    if app then app.stop() end
  end)

  it("takes an http:// target only on a loopback host", function()
    local e = support.raises(api.create_webhook_subscription, api, {
      target_url = "http://hooks.example/x", subscribed_events = { "message.sent" } })
    assert.equal(400, e.status)
    assert.equal(1005, e.code)
    local other = api:create_webhook_subscription{
      target_url = "http://localhost:1/other", subscribed_events = { "message.sent" } }
    api:delete_webhook_subscription(other.id)
  end)

  it("delivers chat.created, message.sent and message.delivered, signed; the app verifies and handles them",
     function()
    local created = api:create_chat{ from = FROM, to = { TO },
                                     message = { parts = { { type = "text", value = "hello from the spec" } } } }
    chat_id = created.chat.id
    local sent = api:send_message(chat_id, { message = { parts = { { type = "text", value = "second" } } } })

    local log = settled_log(5)
    assert.equal(5, #log.deliveries)
    assert.same({ ["chat.created"] = 1, ["message.sent"] = 2, ["message.delivered"] = 2 },
                count_types(log.deliveries))
    local ids, wh = {}, linq.webhook(secret)
    for _, d in ipairs(log.deliveries) do
      assert.equal(204, d.status)
      assert.equal(1, d.attempt)
      assert.equal("delivered", d.outcome)
      assert.equal(app.url .. "/linq/webhooks", d.target_url)
      assert.matches("^msg_[%w]+$", d.webhook_id)
      assert.is_nil(ids[d.webhook_id])
      ids[d.webhook_id] = true
      -- What the simulator sent verifies with the client's own verifier, at its time.
      local event = wh:verify(d.body, { ["webhook-id"] = d.webhook_id,
                                        ["webhook-timestamp"] = string.format("%d", d.timestamp),
                                        ["webhook-signature"] = d.signature }, { now = d.timestamp })
      assert.equal(d.event_type, event.event_type)
      assert.equal(d.event_id, event.event_id)
      assert.equal("v3", event.api_version)
      assert.equal("2026-02-03", event.webhook_version)
      if d.event_type == "chat.created" then
        assert.equal(chat_id, event.data.id)
        assert.equal(2, #event.data.handles)
      else
        assert.equal("outbound", event.data.direction)
        assert.equal(chat_id, event.data.chat.id)
        assert.equal(FROM, event.data.sender_handle.handle)
        assert.equal(FROM, event.data.chat.owner_handle.handle)
        assert.equal("text", event.data.parts[1].type)
        assert.is_nil(event.data.parts[1].reactions)
        if d.event_type == "message.delivered" then
          assert.is_string(event.data.delivered_at)
        else
          assert.equal(linq.null, event.data.delivered_at)
        end
      end
    end
    wh:close()
    local texts = {}
    for _, d in ipairs(log.deliveries) do
      if d.event_type == "message.sent" then
        local event = cjson.decode(d.body)
        texts[event.data.id] = event.data.parts[1].value
      end
    end
    assert.equal("second", texts[sent.message.id])

    -- The app: five verified, each handled once.
    local s = until_true(function()
      local st = stats()
      return (st["handled:message.sent"] == 2 and st["handled:message.delivered"] == 2
              and st["handled:chat.created"] == 1) and st
    end)
    assert.is_table(s, "the app did not handle the five events")
    assert.equal(5, s.verified)
    assert.equal(2, s["verified:message.sent"])
    assert.is_nil(s.replayed)
    assert.is_nil(s["failed:message.sent"])
  end)

  it("acknowledges Linq's retry of a delivery it already took (a replay) without handling it again",
     function()
    local log = settled_log(5)
    local d = log.deliveries[#log.deliveries]
    local before = stats()
    local status = post(d.body, { ["webhook-id"] = d.webhook_id,
                                  ["webhook-timestamp"] = string.format("%d", d.timestamp),
                                  ["webhook-signature"] = d.signature,
                                  ["Content-Type"] = "application/json" })
    assert.equal(204, status)
    local after = stats()
    assert.equal((before.replayed or 0) + 1, after.replayed)
    assert.equal(before.verified, after.verified)
    assert.equal(before["handled:" .. d.event_type], after["handled:" .. d.event_type])
  end)

  it("handles a signed event once when the same webhook-id comes twice", function()
    local id = "msg_" .. support.id():gsub("[^%w]", "")
    local body, headers = signed(id, os.time(), "twice")
    assert.equal(204, (post(body, headers)))
    assert.equal(204, (post(body, headers)))
    local s = until_true(function()
      local st = stats()
      return st["ignored:message.read"] and st
    end)
    assert.equal(1, s["verified:message.read"])
    assert.equal(1, s["ignored:message.read"])  -- no handler for it: dispatched once, ignored
    assert.equal(2, s.replayed)                  -- this one and the previous spec's
  end)

  it("refuses a tampered body and an old timestamp with 4xx, and logs why without the secret", function()
    local id = "msg_" .. support.id():gsub("[^%w]", "")
    local body, headers = signed(id, os.time(), "tampered-marker")
    local tampered = body:gsub("tampered%-marker", "tampered-MARKER")
    assert.equal(401, (post(tampered, headers)))

    local old_id = "msg_" .. support.id():gsub("[^%w]", "")
    local old_body, old_headers = signed(old_id, os.time() - 600, "old-marker")
    assert.equal(400, (post(old_body, old_headers)))

    local nosig = { ["webhook-id"] = headers["webhook-id"], ["webhook-timestamp"] = headers["webhook-timestamp"] }
    assert.equal(400, (post(body, nosig)))

    -- A refused id is not remembered: the genuine message with it still passes.
    assert.equal(204, (post(body, headers)))

    local s = stats()
    assert.equal(1, s["refused:no_matching_signature"])
    assert.equal(1, s["refused:timestamp_too_old"])
    assert.equal(1, s["refused:missing_header"])
    assert.equal(2, s["verified:message.read"])

    local errlog
    until_true(function()
      errlog = app.error_log()
      return select(2, errlog:gsub("linq webhook refused", "")) >= 3
    end)
    assert.matches("linq webhook refused %(no_matching_signature: [^)]*%), webhook%-id " ..
                   id:gsub("%p", "%%%0"), errlog)
    assert.matches("linq webhook refused %(timestamp_too_old: [^)]*%), webhook%-id " ..
                   old_id:gsub("%p", "%%%0"), errlog)
    assert.matches("linq webhook refused %(missing_header: [^)]*%)", errlog)
    assert.is_nil(errlog:find(secret, 1, true))
    assert.is_nil(errlog:find(secret:sub(7), 1, true))   -- nor its base64 alone
    assert.is_nil(errlog:find("marker", 1, true))        -- nor a body
    assert.is_nil(errlog:find(headers["webhook-signature"]:sub(4), 1, true))
  end)

  it("answers an inbound message (the simulator's POST /v3/sim/inbound) with send_message", function()
    assert.is_string(chat_id, "needs the chat of the delivery spec")
    local before = #settled_log().deliveries
    local res, meta = api:request("POST", "/v3/sim/inbound",
                                  { body = { chat_id = chat_id, text = "what time is it?" } })
    assert.equal(201, meta.status)
    assert.is_false(res.message.is_from_me)
    assert.equal(TO, res.message.from_handle.handle)

    local s = until_true(function()
      local st = stats()
      return st.replies == 1 and st["handled:message.received"] == 1 and st
    end)
    assert.is_table(s, "the app did not reply")

    -- The reply is in the chat, newest first: reply, inbound, second, first.
    local page = api:list_chat_messages(chat_id)
    assert.equal(4, #page.messages)
    local reply, inbound = page.messages[1], page.messages[2]
    assert.equal(res.message.id, inbound.id)
    assert.is_true(reply.is_from_me)
    assert.equal("Thanks! You wrote: what time is it?", reply.parts[1].value)

    -- The simulator delivered message.received (inbound), then the reply's sent/delivered.
    local log = settled_log(before + 3)
    local fresh = {}
    for i = before + 1, #log.deliveries do fresh[#fresh + 1] = log.deliveries[i] end
    assert.same({ ["message.received"] = 1, ["message.sent"] = 1, ["message.delivered"] = 1 },
                count_types(fresh))
    for _, d in ipairs(fresh) do
      assert.equal(204, d.status)
      local event = cjson.decode(d.body)
      if d.event_type == "message.received" then
        assert.equal("inbound", event.data.direction)
        assert.equal(TO, event.data.sender_handle.handle)
        assert.equal("what time is it?", event.data.parts[1].value)
      else
        assert.equal(reply.id, event.data.id)
        assert.matches("^reply%-", event.data.idempotency_key)
      end
    end
  end)

  it("retries 5xx and refused connections a few times, and never a 4xx", function()
    local function subscribe(target)
      return api:create_webhook_subscription{ target_url = target, subscribed_events = { "message.received" } }
    end
    local id = support.id()
    local s503 = subscribe(support.url .. "/reflect/503/id=" .. id .. "/v3/hook")
    local s404 = subscribe(support.url .. "/reflect/404/v3/hook")
    local sdown = subscribe("http://127.0.0.1:1/down")
    local sfar = subscribe("https://hooks.example/far")
    api:request("POST", "/v3/sim/inbound", { body = { chat_id = chat_id, text = "retry me" } })
    local function log_of(s)
      local log
      until_true(function()
        log = get_json(support.url .. "/webhook-log/" .. s.id)
        return log.pending == 0 and #log.deliveries > 0
      end, 400)
      return log.deliveries
    end
    local d503, d404, ddown, dfar = log_of(s503), log_of(s404), log_of(sdown), log_of(sfar)
    assert.equal(4, #d503)
    for i, d in ipairs(d503) do
      assert.equal(i, d.attempt)
      assert.equal(503, d.status)
      assert.equal(i < 4 and "retry" or "failed", d.outcome)
      assert.equal(d503[1].webhook_id, d.webhook_id)   -- the same id on every attempt
    end
    assert.equal(4, support.hits(id))
    assert.equal(1, #d404)
    assert.equal(404, d404[1].status)
    assert.equal("failed", d404[1].outcome)
    assert.equal(4, #ddown)
    assert.equal(cjson.null, ddown[1].status)
    assert.matches("connect", ddown[4].error)
    assert.equal(1, #dfar)
    assert.equal("skipped", dfar[1].outcome)
    for _, s in ipairs{ s503, s404, sdown, sfar } do api:delete_webhook_subscription(s.id) end
  end)

  it("keeps the app's error log free of the secret and the API key", function()
    local errlog = app.error_log()
    assert.is_nil(errlog:find(secret:sub(7), 1, true))
    assert.is_nil(errlog:find(support.key, 1, true))
    assert.is_nil(errlog:find("[error]", 1, true), errlog)
  end)
end)
