-- The operations against the stateful simulator, resource by resource: what a
-- program sees when it creates, lists, pages, sends, retries and uploads.  Each
-- spec works in a namespace of its own (sim/README.md), so the store starts empty.
local linq = require("linq")
local support = require("support")

local FROM, TO = "+12025551234", "+12025550100"

local function text(value)
  return { parts = { { type = "text", value = value } } }
end

-- A client on a fresh namespace; mode (optional) is a fault mode put in front of it.
local function api(opts)
  opts = opts or {}
  local ns = opts.ns or support.id()
  local mode = opts.mode and (opts.mode .. "/ns=" .. ns) or ("ns/" .. ns)
  local o = { mode = mode }
  for k, v in pairs(opts) do
    if k ~= "mode" and k ~= "ns" then o[k] = v end
  end
  return support.client(o), ns
end

local function new_chat(c, to, message)
  local res = c:create_chat{ from = FROM, to = { to or TO }, message = text(message or "hello") }
  return res.chat.id, res
end

describe("chats", function()
  it("are created, read, updated and listed", function()
    local c = api()
    local id, created = new_chat(c)
    assert.is_string(id)
    assert.equal("hello", created.chat.message.parts[1].value)
    local chat, meta = c:get_chat(id)
    assert.equal(id, chat.id)
    assert.equal(200, meta.status)
    local list = c:list_chats()
    assert.equal(1, #list.chats)
    assert.equal(id, list.chats[1].id)
    assert.equal(linq.null, list.next_cursor)
    c:close()
  end)

  it("are paged by cursor: 250 chats, limit 100, 3 requests", function()
    local c, ns = api()
    for i = 1, 250 do new_chat(c, string.format("+1202555%04d", i)) end
    local id = support.id()
    local counted = api{ ns = ns, mode = "flaky/0/500/id=" .. id }
    local seen, ids = 0, {}
    for chat in counted:each("list_chats", { limit = 100 }) do
      seen = seen + 1
      ids[chat.id] = true
    end
    assert.equal(250, seen)
    local distinct = 0
    for _ in pairs(ids) do distinct = distinct + 1 end
    assert.equal(250, distinct)
    assert.equal(3, support.hits(id))
    c:close()
    counted:close()
  end)

  it("pages repeat the caller's query and take the caller's tables by value", function()
    local c = api()
    for i = 1, 5 do new_chat(c, string.format("+1303555%04d", i)) end
    new_chat(c, "+14045550000")
    local params = { limit = 2, to = "+14045550000" }
    local pages, items = 0, 0
    for page in c:pages("list_chats", params) do
      pages = pages + 1
      items = items + #page.chats
      params.to = nil  -- changing the caller's table changes nothing
      params.limit = 100
    end
    assert.equal(1, items)
    assert.equal(1, pages)
    local all = 0
    for _ in c:each("list_chats", { limit = 2 }) do all = all + 1 end
    assert.equal(6, all)
    c:close()
  end)

  it("stop with an error when the server repeats a cursor, instead of looping", function()
    local c = support.client{ mode = "body/200/page-loop" }
    local pages = 0
    local e = support.raises(function()
      for _ in c:pages("list_chats", { limit = 1 }) do pages = pages + 1 end
    end)
    assert.equal(1, pages)  -- the first page; the second gave "again" again
    assert.equal("APIResponseValidationError", e.type)
    assert.matches("already given", e.message)
    assert.is_true(linq.is_error(e))
    assert.equal(200, e.status)
    c:close()
  end)

  it("refuse a name that is not a list operation, with a suggestion", function()
    local c = api()
    assert.matches("bad argument #1 to 'each' %('get_chats' is not an operation; did you mean " ..
                   "'list_chats'%?%)", support.raises(c.each, c, "get_chats"))
    assert.matches("'get_chat' is not a paged operation; did you mean",
                   support.raises(c.pages, c, "get_chat"))
    assert.matches("params must be a table, got string",
                   support.raises(c.pages, c, "list_chats", "x"))
    c:close()
  end)

  it("report a missing chat with the API's code", function()
    local c = api()
    local e = support.raises(c.get_chat, c, "00000000-0000-4000-8000-000000000000")
    assert.equal("NotFoundError", e.type)
    assert.equal(404, e.status)
    assert.equal(2001, e.code)
    c:close()
  end)

  it("refuse a number that is not E.164, with the API's code", function()
    local c = api()
    local e = support.raises(c.create_chat, c, { from = "2025551234", to = { TO },
                                                 message = text("x") })
    assert.equal("BadRequestError", e.type)
    assert.equal(1002, e.code)
    c:close()
  end)

  it("return {} from the void operations", function()
    local c = api()
    local id = new_chat(c)
    for _, name in ipairs{ "mark_chat_read", "share_contact_card", "start_typing", "stop_typing",
                           "remove_chat_background" } do
      local res, meta = c[name](c, id)
      assert.same({}, res, name)
      assert.is_true(meta.status >= 200 and meta.status < 300, name)
    end
    assert.same({}, (c:set_chat_background(id, { type = "color" })))
    c:close()
  end)
end)

describe("messages", function()
  it("are sent, listed, read back, edited and deleted", function()
    local c = api()
    local chat_id = new_chat(c, TO, "first")
    local sent, meta = c:send_message(chat_id, { message = text("second") })
    assert.equal(chat_id, sent.chat_id)
    assert.is_string(meta.idempotency_key)
    local values = {}
    for m in c:each("list_chat_messages", chat_id, { limit = 1 }) do
      values[#values + 1] = m.parts[1].value
    end
    table.sort(values)
    assert.same({ "first", "second" }, values)
    local msg = c:get_message(sent.message.id)
    assert.equal(sent.message.id, msg.id)
    c:edit_message(sent.message.id, { text = "edited" })
    assert.same({}, (c:delete_message(sent.message.id)))
    local e = support.raises(c.get_message, c, sent.message.id)
    assert.equal(2002, e.code)
    c:close()
  end)

  it("are sent once when a timed-out send is retried with its key", function()
    local plain, ns = api()
    local chat_id = new_chat(plain, TO, "first")
    local id = support.id()
    -- The first attempt is stored but answered after the client gave up.
    local slow = api{ ns = ns, mode = "lag/1/1500/id=" .. id, timeout = 0.5 }
    local sent, meta = slow:send_message(chat_id, { message = text("only once") })
    assert.equal(2, meta.attempts)
    assert.equal(2, support.hits(id))
    local count = 0
    for m in plain:each("list_chat_messages", chat_id) do
      if m.parts[1].value == "only once" then
        count = count + 1
        assert.equal(sent.message.id, m.id)
      end
    end
    assert.equal(1, count)
    plain:close()
    slow:close()
  end)

  it("without a key would have been stored twice (the same fault, the raw request)", function()
    local plain, ns = api()
    local chat_id = new_chat(plain, TO, "first")
    local id = support.id()
    local slow = api{ ns = ns, mode = "lag/1/1500/id=" .. id, timeout = 0.5 }
    slow:request("POST", "/v3/chats/{chat_id}/messages", {
      params = { chat_id = chat_id }, body = { message = text("twice") },
    })
    local count = 0
    for m in plain:each("list_chat_messages", chat_id) do
      if m.parts[1].value == "twice" then count = count + 1 end
    end
    assert.equal(2, count)
    plain:close()
    slow:close()
  end)

  it("create_message keeps its header key across retries", function()
    local c, ns = api()
    local id = support.id()
    local flaky = api{ ns = ns, mode = "flaky/2/503/id=" .. id }
    local res, meta = flaky:create_message{ to = { TO }, message = text("via create") }
    assert.equal(3, meta.attempts)
    local again = c:create_message{ to = { TO }, message = text("via create"),
                                    idempotency_key = meta.idempotency_key }
    assert.equal(res.message.id, again.message.id)  -- the API returns the first result
    c:close()
    flaky:close()
  end)
end)

describe("attachments", function()
  local function download(url)
    local c = linq.new{ api_key = "unused", base_url = url:match("^(https?://[^/]+)"),
                        max_retries = 0 }
    local path = url:match("^https?://[^/]+(/.*)$")
    return c, path
  end

  it("upload from a file, streamed, with exactly the required headers", function()
    local c = api{ headers = { ["X-Client"] = "mine" } }
    local path = os.tmpname()
    local f = assert(io.open(path, "wb"))
    local bytes = string.rep("linq\0\255", 5000)
    f:write(bytes)
    f:close()
    local att, meta = c:upload_attachment{ path = path, content_type = "image/png" }
    os.remove(path)
    assert.is_string(att.attachment_id)
    assert.is_true(meta.status >= 200 and meta.status < 300)
    assert.equal(200, meta.upload.status)
    local info = c:get_attachment(att.attachment_id)
    assert.equal(#bytes, info.size_bytes)
    assert.equal("complete", info.status)
    -- What arrived at the upload URL: the bytes, and no key or client header.
    local raw, rpath = download(att.upload_url)
    local seen = raw:request("GET", rpath:gsub("%?.*$", "") .. "/headers").headers
    assert.is_nil(seen.authorization)
    assert.is_nil(seen["x-client"])
    assert.equal("image/png", seen["content-type"])
    assert.equal(tostring(#bytes), seen["content-length"])
    raw:close()
    c:close()
  end)

  it("upload bytes, guessing the content type from the file name", function()
    local c = api()
    local att = c:upload_attachment{ data = "hello", filename = "note.txt" }
    local info = c:get_attachment(att.attachment_id)
    assert.equal("text/plain", info.content_type)
    assert.equal(5, info.size_bytes)
    assert.equal("note.txt", info.filename)
    c:close()
  end)

  it("refuse bad specs before any traffic", function()
    local id = support.id()
    local c = support.client{ mode = "status/500/id=" .. id }
    assert.matches("give exactly one of path and data",
                   support.raises(c.upload_attachment, c, { filename = "a.txt" }))
    assert.matches("cannot tell the content type of 'blob'",
                   support.raises(c.upload_attachment, c, { data = "x", filename = "blob" }))
    assert.matches("cannot open '/nonexistent/x.png'",
                   support.raises(c.upload_attachment, c, { path = "/nonexistent/x.png" }))
    assert.equal(0, support.hits(id))
    c:close()
  end)

  it("report a missing attachment with the API's code", function()
    local c = api()
    assert.equal(2003, support.raises(c.get_attachment, c,
                                      "00000000-0000-4000-8000-000000000000").code)
    c:close()
  end)
end)

describe("other resources", function()
  it("webhook subscriptions: created with a secret once, filter removed with empty_array", function()
    local c = api()
    local sub = c:create_webhook_subscription{ subscribed_events = { "message.received" },
                                               target_url = "https://example.com/hook" }
    assert.matches("^whsec_", sub.signing_secret)
    local got = c:get_webhook_subscription(sub.id)
    assert.is_nil(got.signing_secret)
    local updated = c:update_webhook_subscription(sub.id, { phone_numbers = linq.empty_array })
    assert.equal(linq.null, updated.phone_numbers)
    assert.same({}, (c:delete_webhook_subscription(sub.id)))
    assert.equal(2010, support.raises(c.get_webhook_subscription, c, sub.id).code)
    c:close()
  end)

  it("payment requests: paged by offset", function()
    local c = api()
    for i = 1, 45 do c:create_payment_request{ amount = 100 + i, currency = "usd" } end
    local seen, pages, ids = 0, {}, {}
    for req, page in c:each("list_payment_requests", { limit = 20 }) do
      seen = seen + 1
      pages[page] = true
      ids[req.id] = true
    end
    assert.equal(45, seen)
    local n, distinct = 0, 0
    for _ in pairs(pages) do n = n + 1 end
    for _ in pairs(ids) do distinct = distinct + 1 end
    assert.equal(3, n)
    assert.equal(45, distinct)
    assert.equal(2021, support.raises(c.get_payment_request, c, "no-such-request").code)
    c:close()
  end)

  it("phone numbers: a missing one has the API's code", function()
    local c = api()
    local e = support.raises(c.update_phone_number, c, "no-such-number",
                             { forwarding_number = linq.null })
    assert.equal(2019, e.code)
    c:close()
  end)

  it("contact card: phone_number travels in the query of an update", function()
    local c = api()
    c:create_contact_card{ first_name = "Ada", phone_number = FROM }
    local card = c:update_contact_card{ phone_number = FROM, last_name = "Lovelace" }
    assert.equal("Lovelace", card.last_name)
    assert.equal("Ada", card.first_name)
    c:close()
  end)

  it("capability, blocked handles and experiences answer", function()
    local c = api()
    assert.is_boolean(c:check_imessage{ address = TO }.available)
    c:block_handle{ handle = TO }
    assert.equal(TO, c:list_blocked_handles().blocked_handles[1].handle)
    assert.same({}, (c:unblock_handle{ handle = TO }))
    assert.equal(0, #c:list_blocked_handles().blocked_handles)
    assert.is_table(c:list_experiences().experiences)
    c:close()
  end)
end)

describe("replies", function()
  it("name the request by x-trace-id or the body's trace_id without x-request-id", function()
    local c = api{ mode = "flaky/0/500/id=" .. support.id() .. "/no-request-id=1" }
    local _, meta = c:phone_numbers()
    assert.is_string(meta.request_id)
    assert.equal(meta.headers["x-trace-id"], meta.request_id)
    c:close()
  end)

  it("name the request by the body's trace_id when no header names it", function()
    local c = support.client{ mode = "traced/200" }
    local _, meta = c:phone_numbers()
    assert.equal("trace-in-body", meta.request_id)
    c:close()
    c = support.client{ mode = "traced/500", max_retries = 0 }
    local e = support.raises(c.phone_numbers, c)
    assert.equal("trace-in-body", e.request_id)
    assert.equal(3006, e.code)
    c:close()
  end)

  it("decode JSON integers as Lua integers where Lua has them", function()
    local c = api()
    local att = c:create_attachment{ content_type = "image/png", filename = "a.png",
                                     size_bytes = 1024 }
    local info = c:get_attachment(att.attachment_id)
    assert.equal(1024, info.size_bytes)
    if math.type then assert.equal("integer", math.type(info.size_bytes)) end
    c:close()
  end)
end)
