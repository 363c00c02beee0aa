-- Webhook verifications per second by linq.webhook (C: HMAC-SHA256, base64 and the
-- comparison in libcrypto, then the JSON decode), for bench/webhooks.
--   lua5.4 bench/webhook_verify.lua BODY_BYTES SECONDS
local linq = require("linq")
local clock = os.clock

local size, seconds = tonumber(arg[1]) or 1024, tonumber(arg[2]) or 2
local secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
local pad = string.rep("x", math.max(0, size - 60))
local body = '{"event_type":"message.received","data":{"text":"' .. pad .. '"}}'
local id, ts = "msg_p5jXN8AQM9LWM0D4loKWxJek", tostring(os.time())
local headers = {
  ["webhook-id"] = id, ["webhook-timestamp"] = ts,
  ["webhook-signature"] = linq.webhook_signature(secret, id, ts, body),
}
local wh = linq.webhook(secret)
assert(wh:verify(body, headers).event_type == "message.received")

local n, start = 0, clock()
repeat
  for _ = 1, 100 do wh:verify(body, headers) end
  n = n + 100
until clock() - start >= seconds
print(string.format("%d\t%.0f", #body, n / (clock() - start)))
