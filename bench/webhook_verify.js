// Webhook verifications per second by the standardwebhooks package (the official
// TypeScript SDK's verifier), for bench/webhooks:
//   NODE_PATH=<dir>/node_modules node bench/webhook_verify.js BODY_BYTES SECONDS
const { Webhook } = require("standardwebhooks");

const size = Number(process.argv[2] || 1024), seconds = Number(process.argv[3] || 2);
const secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
const body = '{"event_type":"message.received","data":{"text":"' +
  "x".repeat(Math.max(0, size - 60)) + '"}}';
const wh = new Webhook(secret);
const id = "msg_p5jXN8AQM9LWM0D4loKWxJek";
const ts = new Date();
const headers = {
  "webhook-id": id,
  "webhook-timestamp": String(Math.floor(ts.getTime() / 1000)),
  "webhook-signature": wh.sign(id, ts, body),
};
if (wh.verify(body, headers).event_type !== "message.received") throw new Error("did not verify");

let n = 0;
const start = process.cpuUsage();
const used = () => { const u = process.cpuUsage(start); return (u.user + u.system) / 1e6; };
do {
  for (let i = 0; i < 100; i++) wh.verify(body, headers);
  n += 100;
} while (used() < seconds);
console.log(`${body.length}\t${Math.round(n / used())}`);
