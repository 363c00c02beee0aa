-- Standard Webhooks verification (api-v3.md section 6): linq.webhook, verify,
-- linq.webhook_signature, the replay guard and linq.events.  No simulator needed.
local linq = require("linq")
local support = require("support")

-- The Standard Webhooks reference vector (section 6.6).
local SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
local SECRET_B64 = "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
local ID = "msg_p5jXN8AQM9LWM0D4loKWxJek"
local TS = "1614265330"
local NOW = 1614265330
local BODY = '{"test": 2432232314}'
local SIG = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="

local function headers(over)
  local h = { ["webhook-id"] = ID, ["webhook-timestamp"] = TS, ["webhook-signature"] = SIG }
  for k, v in pairs(over or {}) do
    h[k] = v ~= false and v or nil
  end
  return h
end

-- The error verify raised; fails the spec when it passed or raised something else.
local function refusal(wh, body, h, opts)
  local e = support.raises(wh.verify, wh, body, h, opts)
  assert.is_true(linq.is_error(e), tostring(e))
  assert.equals("WebhookVerificationError", e.type)
  return e
end

local function reason(wh, body, h, opts)
  return refusal(wh, body, h, opts).reason
end

-- s with the byte at i replaced by another one.
local function change(s, i, by)
  local b = s:byte(i)
  by = by or (b ~= 65 and "A" or "B")
  return s:sub(1, i - 1) .. by .. s:sub(i + 1)
end

-- Standard base64 decoding, lenient about the spare bits (as EVP_DecodeBlock is).
local function b64decode(s)
  local alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
  local bits, nbits, out = 0, 0, {}
  for i = 1, #s do
    local c = s:sub(i, i)
    if c == "=" then break end
    bits = bits * 64 + (alphabet:find(c, 1, true) - 1)
    nbits = nbits + 6
    if nbits >= 8 then
      nbits = nbits - 8
      local p = 2 ^ nbits
      out[#out + 1] = string.char(math.floor(bits / p))
      bits = bits % p
    end
  end
  return table.concat(out)
end

local function assert_no_secret(text, what)
  assert.is_nil(text:find(SECRET_B64, 1, true), what)
  assert.is_nil(text:find(SECRET, 1, true), what)
  assert.is_nil(text:find(SECRET_B64:sub(1, 8), 1, true), what)   -- nor a piece of it
end

describe("linq.webhook", function()
  local wh

  before_each(function()
    wh = linq.webhook(SECRET)
  end)

  after_each(function()
    wh:close()
  end)

  describe("the reference vector", function()
    it("verifies with the clock at its time, and returns the decoded event", function()
      local event = wh:verify(BODY, headers(), { now = NOW })
      assert.equals(2432232314, event.test)
      if math.type then assert.equals("integer", math.type(event.test)) end
    end)

    it("verifies with the bare base64 secret too", function()
      local bare = linq.webhook(SECRET_B64)
      assert.equals(2432232314, bare:verify(BODY, headers(), { now = NOW }).test)
      bare:close()
    end)

    it("is refused for every single-byte change of the body", function()
      for i = 1, #BODY do
        assert.equals("no_matching_signature", reason(wh, change(BODY, i), headers(), { now = NOW }), i)
      end
    end)

    it("is refused for every single-byte change of the id", function()
      for i = 1, #ID do
        assert.equals("no_matching_signature",
          reason(wh, BODY, headers{ ["webhook-id"] = change(ID, i) }, { now = NOW }), i)
      end
    end)

    it("is refused for every single-byte change of the timestamp", function()
      for i = 1, #TS do
        local digit = tostring((tonumber(TS:sub(i, i)) + 1) % 10)
        -- another digit: still a timestamp; with a tolerance that accepts it, the signature fails
        assert.equals("no_matching_signature",
          reason(wh, BODY, headers{ ["webhook-timestamp"] = change(TS, i, digit) }, { now = NOW, tolerance = 1e14 }),
          i)
        -- with the default tolerance, the clock check refuses it first (or the signature)
        local r = reason(wh, BODY, headers{ ["webhook-timestamp"] = change(TS, i, digit) }, { now = NOW })
        assert.is_truthy(r == "timestamp_too_old" or r == "timestamp_too_new" or r == "no_matching_signature", r)
        -- anything else: not a timestamp
        assert.equals("bad_timestamp",
          reason(wh, BODY, headers{ ["webhook-timestamp"] = change(TS, i, "x") }, { now = NOW }), i)
      end
    end)

    it("is refused for every single-byte change of the signature header", function()
      for i = 1, #SIG do
        assert.equals("no_matching_signature",
          reason(wh, BODY, headers{ ["webhook-signature"] = change(SIG, i) }, { now = NOW }), i)
      end
    end)

    it("is refused when the signature is cut or lengthened", function()
      for _, s in ipairs{ SIG:sub(1, -2), SIG .. "=", SIG .. "A", "v1,", "v1", SIG:sub(4) } do
        assert.equals("no_matching_signature",
          reason(wh, BODY, headers{ ["webhook-signature"] = s }, { now = NOW }), s)
      end
    end)
  end)

  describe("the signature header", function()
    local other = "v1,AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA="

    it("passes when one of several space-separated entries matches", function()
      for _, s in ipairs{
        other .. " " .. SIG,
        SIG .. " " .. other,
        other .. " v2,xyz " .. SIG .. " v1,short",
        "  " .. SIG .. "  ",
      } do
        assert.equals(2432232314, wh:verify(BODY, headers{ ["webhook-signature"] = s }, { now = NOW }).test, s)
      end
    end)

    it("ignores entries of other versions", function()
      local b64 = SIG:sub(4)
      for _, s in ipairs{ "v2," .. b64, "v1a," .. b64, "V1," .. b64, "v0," .. b64 .. " v2," .. b64, other } do
        assert.equals("no_matching_signature", reason(wh, BODY, headers{ ["webhook-signature"] = s }, { now = NOW }), s)
      end
    end)

    it("is compared as base64 text: a non-canonical encoding of the right bytes does not pass", function()
      -- 'F' instead of 'E' before the padding: the same 32 bytes, other spare bits.
      local odd = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OF="
      assert.equals(b64decode(SIG:sub(4)), b64decode(odd:sub(4)))
      assert.equals(32, #b64decode(odd:sub(4)))
      assert.equals("no_matching_signature", reason(wh, BODY, headers{ ["webhook-signature"] = odd }, { now = NOW }))
      -- the same bytes without the padding
      local unpadded = SIG:sub(1, -2)
      assert.equals(b64decode(SIG:sub(4)), b64decode(unpadded:sub(4)))
      assert.equals("no_matching_signature",
        reason(wh, BODY, headers{ ["webhook-signature"] = unpadded }, { now = NOW }))
    end)
  end)

  describe("the headers", function()
    it("are found in any case", function()
      for _, names in ipairs{
        { "Webhook-Id", "Webhook-Timestamp", "Webhook-Signature" },
        { "WEBHOOK-ID", "WEBHOOK-TIMESTAMP", "WEBHOOK-SIGNATURE" },
        { "wEbHoOk-iD", "webhook-TIMESTAMP", "webhook-Signature" },
      } do
        local h = { [names[1]] = ID, [names[2]] = TS, [names[3]] = SIG }
        assert.equals(2432232314, wh:verify(BODY, h, { now = NOW }).test, names[1])
      end
    end)

    it("may be tables (a field sent several times): the first element counts", function()
      local h = { ["webhook-id"] = { ID }, ["webhook-timestamp"] = { TS, "0" },
        ["webhook-signature"] = { "v1,AAAA", SIG } }   -- signatures: every element
      assert.equals(2432232314, wh:verify(BODY, h, { now = NOW }).test)
      h["webhook-signature"] = { SIG, "v1,AAAA" }
      assert.equals(2432232314, wh:verify(BODY, h, { now = NOW }).test)
      h["webhook-signature"] = { "v1,AAAA", "v2,x", SIG:sub(1, 20), SIG:sub(21) }   -- elements are whole entries
      assert.equals("no_matching_signature", reason(wh, BODY, h, { now = NOW }))
      assert.equals("missing_header", reason(wh, BODY, headers{ ["webhook-id"] = { 1, ID } }, { now = NOW }))
      assert.equals("missing_header", reason(wh, BODY, headers{ ["webhook-id"] = {} }, { now = NOW }))
    end)

    for _, name in ipairs{ "webhook-id", "webhook-timestamp", "webhook-signature" } do
      it("refuse a message without " .. name .. " (missing_header), never a silent pass", function()
        for _, v in ipairs{ false, "", 1614265330, true, { "" } } do
          local e = refusal(wh, BODY, headers{ [name] = v }, { now = NOW })
          assert.equals("missing_header", e.reason, tostring(v))
          assert.matches(name, e.message, 1, true)
        end
      end)
    end

    it("refuse a name given twice with different values, and accept it with the same", function()
      local h = headers{ ["Webhook-Id"] = "msg_other" }
      assert.equals("missing_header", reason(wh, BODY, h, { now = NOW }))
      assert.equals(2432232314, wh:verify(BODY, headers{ ["Webhook-Id"] = ID }, { now = NOW }).test)
    end)

    it("are read with raw access: an __index supplies nothing", function()
      local h = setmetatable({}, { __index = function(_, k) return headers()[k:lower()] end })
      assert.equals("missing_header", reason(wh, BODY, h, { now = NOW }))
      local h2 = setmetatable({ ["webhook-id"] = ID, ["webhook-timestamp"] = TS },
        { __index = { ["webhook-signature"] = SIG } })
      assert.equals("missing_header", reason(wh, BODY, h2, { now = NOW }))
    end)
  end)

  describe("the timestamp", function()
    it("must be a whole number of seconds, digits only (bad_timestamp)", function()
      for _, t in ipairs{ "1614265330.9", "-1614265330", "+1614265330", " 1614265330", "1614265330 ",
                          "1.6e9", "0x6037", "abc", "1614265330000000", "16142653 30" } do
        assert.equals("bad_timestamp", reason(wh, BODY, headers{ ["webhook-timestamp"] = t }, { now = NOW }), t)
      end
    end)

    it("is refused one second past the tolerance either way, and accepted exactly at it", function()
      assert.equals("timestamp_too_old", reason(wh, BODY, headers(), { now = NOW + 301 }))
      assert.equals("timestamp_too_new", reason(wh, BODY, headers(), { now = NOW - 301 }))
      assert.equals(2432232314, wh:verify(BODY, headers(), { now = NOW + 300 }).test)
      assert.equals(2432232314, wh:verify(BODY, headers(), { now = NOW - 300 }).test)
      -- a clock with fractions counts whole seconds, as the Standard Webhooks libraries do
      assert.equals(2432232314, wh:verify(BODY, headers(), { now = NOW + 300.9 }).test)
      for _, tol in ipairs{ 0, 10, 3600 } do
        assert.equals("timestamp_too_old", reason(wh, BODY, headers(), { now = NOW + tol + 1, tolerance = tol }))
        assert.equals("timestamp_too_new", reason(wh, BODY, headers(), { now = NOW - tol - 1, tolerance = tol }))
        assert.equals(2432232314, wh:verify(BODY, headers(), { now = NOW + tol, tolerance = tol }).test)
        assert.equals(2432232314, wh:verify(BODY, headers(), { now = NOW - tol, tolerance = tol }).test)
      end
    end)

    it("is checked against the real clock by default", function()
      assert.equals("timestamp_too_old", reason(wh, BODY, headers()))
      local ts = tostring(os.time())
      local body = '{"a": 1}'
      local sig = linq.webhook_signature(SECRET, ID, ts, body)
      local event = wh:verify(body, headers{ ["webhook-timestamp"] = ts, ["webhook-signature"] = sig })
      assert.equals(1, event.a)
    end)
  end)

  describe("the body", function()
    it("must be JSON once the signature matched (bad_json)", function()
      for _, body in ipairs{ "{", "", "not json", "2", "null", '"text"', '{"a": NaN}' } do
        local sig = linq.webhook_signature(SECRET, ID, TS, body)
        assert.equals("bad_json", reason(wh, body, headers{ ["webhook-signature"] = sig }, { now = NOW }), body)
      end
    end)

    it("is decoded with integers where the JSON has them", function()
      local body = '{"event_type":"message.sent","data":{"code":3007,"parts":[{"size_bytes":1024}]},"x":1.5}'
      local sig = linq.webhook_signature(SECRET, ID, TS, body)
      local event = wh:verify(body, headers{ ["webhook-signature"] = sig }, { now = NOW })
      assert.equals("message.sent", event.event_type)
      assert.equals(3007, event.data.code)
      assert.equals(1.5, event.x)
      if math.type then
        assert.equals("integer", math.type(event.data.parts[1].size_bytes))
      end
    end)
  end)

  describe("errors", function()
    it("are linq errors whose tostring is one line, without the secret or the body", function()
      local body = '{"secret_marker_in_body": "XYZZY-body"}'
      local bad_json = '{"XYZZY-body": '
      local cases = {
        { body, headers{ ["webhook-id"] = false } },
        { body, headers{ ["webhook-timestamp"] = "x" } },
        { body, headers(), { now = 0 } },
        { body, headers(), { now = 2 * NOW } },
        { body, headers() , { now = NOW } },
        { bad_json, headers{ ["webhook-signature"] = linq.webhook_signature(SECRET, ID, TS, bad_json) },
          { now = NOW } },
      }
      for i, c in ipairs(cases) do
        local e = support.raises(wh.verify, wh, c[1], c[2], c[3])
        local text = tostring(e)
        assert.matches("^linq: WebhookVerificationError: ", text)
        assert.is_nil(text:find("\n", 1, true), i)
        assert.is_nil(text:find("XYZZY", 1, true), i)
        assert_no_secret(text, i)
        for k, v in pairs(e) do
          if type(v) == "string" then
            assert.is_nil(v:find("XYZZY", 1, true), k)
            assert_no_secret(v, k)
          end
        end
      end
    end)

    it("name 'verify' for bad arguments", function()
      local cases = {
        { nil, headers(), "#1 to 'verify' %(the raw body must be a string" },
        { 42, headers(), "#1 to 'verify'" },
        { BODY, nil, "#2 to 'verify' %(headers must be a table" },
        { BODY, "webhook-id: x", "#2 to 'verify'" },
        { BODY, headers(), "#3 to 'verify' %(options must be a table", true },
        { BODY, headers(), "unknown option 'tolerence' %(did you mean 'tolerance'%?%)", { tolerence = 5 } },
        { BODY, headers(), "option 'tolerance' must be", { tolerance = -1 } },
        { BODY, headers(), "option 'tolerance' must be a number", { tolerance = "300" } },
        { BODY, headers(), "option 'now' must be", { now = 0 / 0 } },
        { BODY, headers(), "option 'now' must be", { now = math.huge } },
        { BODY, headers(), "option 'seen' must be a replay guard", { seen = 5 } },
        { BODY, headers(), "option 'seen' must be a replay guard", { seen = {} } },
      }
      for i, c in ipairs(cases) do
        local opts = c[4]
        if opts == true then opts = "x" end
        local ok, e = pcall(function() return wh:verify(c[1], c[2], opts) end)
        assert.is_false(ok, i)
        assert.equals("string", type(e), i)
        assert.matches(c[3], e, nil, false)
        assert_no_secret(e, i)
      end
    end)
  end)

  describe("the secret", function()
    local function secret_error(secret)
      local ok, e = pcall(linq.webhook, secret)
      assert.is_false(ok, tostring(secret))
      assert.matches("^bad argument #1 to 'webhook' %(", e)
      assert.matches("LINQ_WEBHOOK_SECRET", e, 1, true)
      return e
    end

    it("is refused when empty, not base64, or badly padded, naming LINQ_WEBHOOK_SECRET", function()
      assert.matches("empty", secret_error(""))
      assert.matches("empty", secret_error("whsec_"))
      for _, s in ipairs{ "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLa@w", "whsec_MfKQ 9r8GKYqrTwjUPD8ILPZIo2LaLaS",
                          "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLa-_", "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw\n",
                          "whsec_MfKQ\0r8GKYqrTwjUPD8ILPZIo2LaLaSw" } do
        assert.matches("not base64", secret_error(s), 1, true)
      end
      for _, s in ipairs{ "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaS", "abc", "ab=c", "a===", "====",
                          "QR==", "QUJ=", "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLa==" } do
        assert.matches("bad padding", secret_error(s), 1, true)
      end
      assert.matches("must be a string", secret_error(42))
      -- valid padded secrets are taken
      linq.webhook("QQ=="):close()
      linq.webhook("whsec_QUI="):close()
      linq.webhook("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw7Jxx2Oll+OE="):close()
    end)

    it("never appears in an error about it", function()
      for _, s in ipairs{ SECRET .. "=", SECRET:sub(1, -2), SECRET .. "!!!!", SECRET_B64 .. "@" } do
        assert_no_secret(secret_error(s), s)
      end
    end)

    it("is never shown by tostring", function()
      local text = tostring(wh)
      assert.matches("^linq%.Webhook: ", text)
      assert_no_secret(text, text)
    end)

    local function quote(s)
      return "'" .. s:gsub("'", "'\\''") .. "'"
    end

    -- The output of code run by a child interpreter with LINQ_WEBHOOK_SECRET set or unset.
    local function child(env_secret, code)
      local env = env_secret and ("LINQ_WEBHOOK_SECRET=" .. quote(env_secret)) or "-u LINQ_WEBHOOK_SECRET"
      return support.read_command("env " .. env .. " " .. support.lua .. " -e " .. quote(code) .. " 2>&1")
    end

    it("comes from LINQ_WEBHOOK_SECRET by default", function()
      local out = child(SECRET, "local linq = require('linq'); local wh = linq.webhook(); " ..
        "local e = wh:verify('" .. BODY .. "', { ['webhook-id'] = '" .. ID .. "', ['webhook-timestamp'] = '" ..
        TS .. "', ['webhook-signature'] = '" .. SIG .. "' }, { now = " .. NOW .. " }); print(e.test == 2432232314)")
      assert.equals("true", out)
    end)

    it("is an argument error naming LINQ_WEBHOOK_SECRET when the variable is missing or empty", function()
      local code = "local ok, e = pcall(require('linq').webhook); print(ok, e)"
      local missing = child(nil, code)
      assert.matches("^false\tbad argument #1 to 'webhook' %(the webhook secret is missing", missing)
      assert.matches("LINQ_WEBHOOK_SECRET", missing, 1, true)
      local empty = child("", code)
      assert.matches("^false\tbad argument #1 to 'webhook' %(the webhook secret is empty", empty)
      assert.matches("LINQ_WEBHOOK_SECRET", empty, 1, true)
      local bad = child(SECRET_B64 .. "=", code)
      assert.matches("bad padding", bad, 1, true)
      assert_no_secret(bad, bad)
    end)
  end)

  describe("close", function()
    it("wipes the key: every later call raises 'closed'; close is idempotent", function()
      local w = linq.webhook(SECRET)
      assert.equals(2432232314, w:verify(BODY, headers(), { now = NOW }).test)
      w:close()
      w:close()
      local ok, e = pcall(w.verify, w, BODY, headers(), { now = NOW })
      assert.is_false(ok)
      assert.matches("closed", e, 1, true)
      ok, e = pcall(function() local r = w:verify(BODY, headers(), { now = NOW }) return r end)
      assert.is_false(ok)
      -- "calling 'verify' on bad self (...)" where the interpreter reports a method call
      assert.matches("'verify'.*%(the linq%.Webhook is closed%)", e)
      assert.matches("^linq%.Webhook %(closed%): ", tostring(w))
    end)

    it("is what a to-be-closed variable does (Lua 5.4)", function()
      if _VERSION ~= "Lua 5.4" then pending("to-be-closed variables need Lua 5.4") return end
      local chunk = assert(load([[
        local linq, secret = ...
        local kept
        do
          local w <close> = linq.webhook(secret)
          kept = w
        end
        return kept
      ]]))
      local kept = chunk(linq, SECRET)
      assert.matches("closed", tostring(kept), 1, true)
      assert.has_error(function() kept:verify(BODY, headers()) end)
    end)

    it("and the collector free verifiers that were never closed", function()
      for _ = 1, 200 do linq.webhook(SECRET) end
      collectgarbage()
      collectgarbage()
    end)

    it("from inside the replay guard, mid-verify, is harmless", function()
      local w = linq.webhook(SECRET)
      local guard = { add = function() w:close() return true end }
      assert.equals(2432232314, w:verify(BODY, headers(), { now = NOW, seen = guard }).test)
      assert.matches("closed", tostring(w), 1, true)
    end)

    it("refuses a userdata of another kind", function()
      local ok, e = pcall(wh.verify, io.stdout, BODY, headers())
      assert.is_false(ok)
      assert.matches("linq.Webhook expected", e, 1, true)
    end)
  end)

  describe("the replay guard", function()
    it("refuses a second delivery of an accepted webhook-id", function()
      local guard = linq.replay_guard{ size = 10 }
      assert.equals(2432232314, wh:verify(BODY, headers(), { now = NOW, seen = guard }).test)
      local e = refusal(wh, BODY, headers(), { now = NOW + 1, seen = guard })
      assert.equals("replayed", e.reason)
      -- another verifier sharing the guard refuses it too
      local again = linq.webhook(SECRET_B64)
      assert.equals("replayed", reason(again, BODY, headers(), { now = NOW, seen = guard }))
      again:close()
      -- a verification failure comes first: a forged copy is not told about the id
      assert.equals("no_matching_signature",
        reason(wh, "{}", headers(), { now = NOW, seen = guard }))
    end)

    it("remembers nothing of a message that failed", function()
      local guard = linq.replay_guard()
      local bad_json = "{"
      local cases = {
        { BODY, headers{ ["webhook-signature"] = "v1,AAAA" }, "no_matching_signature" },
        { BODY, headers(), "timestamp_too_old", NOW + 1000 },
        { bad_json, headers{ ["webhook-signature"] = linq.webhook_signature(SECRET, ID, TS, bad_json) }, "bad_json" },
        { BODY, headers{ ["webhook-signature"] = false }, "missing_header" },
      }
      for _, c in ipairs(cases) do
        assert.equals(c[3], reason(wh, c[1], c[2], { now = c[4] or NOW, seen = guard }))
      end
      assert.equals(0, guard:count())
      assert.equals(2432232314, wh:verify(BODY, headers(), { now = NOW, seen = guard }).test)
      assert.equals(1, guard:count())
    end)

    it("keeps an entry until the message's timestamp plus the tolerance, not insertion plus it", function()
      local guard = linq.replay_guard()
      -- accepted 5 s after its timestamp with a 10 s tolerance: remembered until NOW + 10
      wh:verify(BODY, headers(), { now = NOW + 5, tolerance = 10, seen = guard })
      assert.equals("replayed", reason(wh, BODY, headers(), { now = NOW + 10, tolerance = 10, seen = guard }))
      -- NOW + 11 would be NOW + 15 for insertion time plus the tolerance; the entry is gone
      assert.equals(2432232314, wh:verify(BODY, headers(), { now = NOW + 11, tolerance = 1000, seen = guard }).test)
      -- and now remembered until NOW + 1000
      assert.equals("replayed", reason(wh, BODY, headers(), { now = NOW + 1000, tolerance = 1000, seen = guard }))
    end)

    it("adds and expires by the times it is given", function()
      local guard = linq.replay_guard{ size = 5 }
      assert.is_true(guard:add("a", 100, 50))
      assert.is_false(guard:add("a", 100, 60))
      assert.is_false(guard:add("a", 500, 100))   -- live while now <= expires_at
      assert.is_true(guard:add("a", 200, 101))    -- expired: accepted and remembered again
      assert.is_false(guard:add("a", 200, 150))
      assert.is_true(guard:add("b", 120, 110))
      assert.is_true(guard:add("c", 130, 125))    -- b expired and was dropped
      assert.equals(2, guard:count())
    end)

    it("evicts the entry that expires soonest when full", function()
      local guard = linq.replay_guard{ size = 3 }
      assert.is_true(guard:add("late", 300, 0))
      assert.is_true(guard:add("soon", 100, 0))
      assert.is_true(guard:add("mid", 200, 0))
      assert.is_true(guard:add("new", 250, 0))    -- full: "soon" goes
      assert.equals(3, guard:count())
      assert.is_true(guard:add("soon", 100, 0))   -- forgotten, so taken again ("mid" goes)
      assert.is_false(guard:add("late", 300, 0))
      assert.is_false(guard:add("new", 250, 0))
      assert.is_true(guard:add("mid", 200, 0))
      -- many ids through a small guard: it never grows past its size
      local g = linq.replay_guard{ size = 100 }
      for i = 1, 5000 do
        assert.is_true(g:add("id" .. i, 1000 + (i * 7919) % 500, 0))
        assert.is_true(g:count() <= 100)
      end
      -- through verify: the first id is evicted by two others in a guard of size 2
      local small = linq.replay_guard{ size = 2 }
      local function deliver(id)
        local sig = linq.webhook_signature(SECRET, id, TS, BODY)
        return wh:verify(BODY, headers{ ["webhook-id"] = id, ["webhook-signature"] = sig }, { now = NOW, seen = small })
      end
      deliver("msg_1")
      deliver("msg_2")
      assert.equals("replayed", support.raises(deliver, "msg_2").reason)
      deliver("msg_3")
      assert.equals(2, small:count())
      assert.equals(2432232314, deliver("msg_1").test)
    end)

    it("checks its options", function()
      for _, opts in ipairs{ { size = 0 }, { size = 1.5 }, { size = "10" }, { sise = 10 }, 5 } do
        local ok, e = pcall(linq.replay_guard, opts)
        assert.is_false(ok)
        assert.matches("bad argument #1 to 'replay_guard'", e, 1, true)
      end
    end)

    it("may be any table with an add method", function()
      local seen, calls = {}, {}
      local guard = { add = function(_, id, expires_at, now)
        calls[#calls + 1] = { id, expires_at, now }
        if seen[id] then return false end
        seen[id] = true
        return true
      end }
      wh:verify(BODY, headers(), { now = NOW + 7.5, seen = guard })
      assert.equals("replayed", reason(wh, BODY, headers(), { now = NOW, seen = guard }))
      assert.same({ ID, NOW + 300, NOW + 7 }, calls[1])
    end)

    it("by lua_shared_dict name is refused outside nginx", function()
      assert.is_nil(rawget(_G, "ngx"))
      local ok, e = pcall(function() return wh:verify(BODY, headers(), { now = NOW, seen = "webhooks" }) end)
      assert.is_false(ok)
      assert.matches("bad argument #3 to 'verify' (option 'seen': a lua_shared_dict name", e, 1, true)
    end)

    it("by lua_shared_dict name uses the dict's atomic add, with the time left as its expiry", function()
      local added = {}
      local dict = {}
      function dict.add(_, key, value, exptime)
        if added[key] then return false, "exists" end
        added[key] = { value, exptime }
        return true
      end
      _G.ngx = { shared = { webhooks = dict } }
      local ok, err = pcall(function()
        wh:verify(BODY, headers(), { now = NOW + 100, seen = "webhooks" })
        assert.same({ true, 201 }, added[ID])   -- until NOW + 300, plus the second being counted
        assert.equals("replayed", reason(wh, BODY, headers(), { now = NOW + 100, seen = "webhooks" }))
        local ok2, e = pcall(function() return wh:verify(BODY, headers(), { now = NOW, seen = "other" }) end)
        assert.is_false(ok2)
        assert.matches("no lua_shared_dict named 'other'", e, 1, true)
      end)
      _G.ngx = nil
      assert(ok, err)
    end)
  end)

  describe("linq.webhook_signature", function()
    it("reproduces the reference vector", function()
      assert.equals(SIG, linq.webhook_signature(SECRET, ID, TS, BODY))
      assert.equals(SIG, linq.webhook_signature(SECRET, ID, NOW, BODY))
      assert.equals(SIG, linq.webhook_signature(SECRET_B64, ID, TS, BODY))
    end)

    it("signs what verify accepts, for any body", function()
      local body = '{"big": "' .. string.rep("x", 100000) .. '", "nul": "a\\u0000b"}'
      local sig = linq.webhook_signature(SECRET, "evt_1", TS, body)
      assert.matches("^v1,[A-Za-z0-9+/]+=$", sig)
      assert.equals(47, #sig)
      local event = wh:verify(body, headers{ ["webhook-id"] = "evt_1", ["webhook-signature"] = sig }, { now = NOW })
      assert.equals(100000, #event.big)
    end)

    it("checks its arguments and the secret", function()
      local cases = {
        { { "", ID, TS, BODY }, "bad argument #1 to 'webhook_signature' %(the webhook secret is empty" },
        { { SECRET, nil, TS, BODY }, "bad argument #2 to 'webhook_signature'" },
        { { SECRET, ID, 1.5, BODY }, "bad argument #3 to 'webhook_signature'" },
        { { SECRET, ID, {}, BODY }, "bad argument #3 to 'webhook_signature'" },
        { { SECRET, ID, TS, nil }, "bad argument #4 to 'webhook_signature'" },
      }
      for i, c in ipairs(cases) do
        local ok, e = pcall(linq.webhook_signature, c[1][1], c[1][2], c[1][3], c[1][4])
        assert.is_false(ok, i)
        assert.matches(c[2], e)
      end
    end)
  end)
end)

describe("linq.events", function()
  it("lists every event type of section 6.3: the 27 of TS and the 18 Go adds", function()
    assert.equals(45, #linq.events)
    local seen = {}
    for _, name in ipairs(linq.events) do
      assert.equals("string", type(name))
      assert.matches("^[a-z_]+%.[a-z_.]+$", name)
      assert.is_nil(seen[name], name)
      seen[name] = true
    end
    for _, name in ipairs{ "message.sent", "message.edited", "chat.typing_indicator.stopped",
                           "location.sharing.stopped", "poll.vote.removed", "payment.authorized",
                           "connection.revoked", "phone_number.status_updated", "call.no_answer" } do
      assert.is_true(seen[name], name)
    end
    assert.equals("message.sent", linq.events[1])
    assert.equals("location.sharing.stopped", linq.events[27])
  end)
end)
