// The official Node SDK (@linqapp/sdk) in a loop against the simulator (run by
// bench/run, under sim/with-sim; the SDK is installed in BENCH_NODE_DIR, outside
// the repository):
//   node bench/node_client.js bench SECONDS WARMUP COUNT
//     awaits client.phoneNumbers.list() in sequence; warms up for WARMUP seconds,
//     then calls for SECONDS of wall clock and prints  calls=N wall=S cpu=S bytes=0
//     (cpu: process.cpuUsage() user + system over the measured calls)
//   node bench/node_client.js paths
//     prints the request path that reaches the simulator's echo mode for a base
//     URL without and with a trailing slash (both must be /echo/v3/phone_numbers)
'use strict';
const sdk = require(require.resolve('@linqapp/sdk', { paths: [process.env.BENCH_NODE_DIR || '.'] }));
const LinqAPIV3 = sdk.LinqAPIV3 || sdk.default;

const url = process.env.LINQ_SIM_URL;
const key = process.env.LINQ_SIM_KEY;
if (!url || !key) throw new Error('run under sim/with-sim');

async function paths() {
  for (const base of [url + '/echo', url + '/echo/']) {
    const client = new LinqAPIV3({ apiKey: key, baseURL: base });
    const res = await client.phoneNumbers.list();
    console.log(`${base} -> ${res.path}`);
  }
}

async function bench(seconds, warmup, count) {
  const client = new LinqAPIV3({ apiKey: key, baseURL: url + '/api/partner' });
  const first = await client.phoneNumbers.list();
  if (!Array.isArray(first.phone_numbers) || first.phone_numbers.length !== count) {
    throw new Error(`expected ${count} phone numbers`);
  }
  const now = () => Number(process.hrtime.bigint()) / 1e9;
  let t0 = now();
  while (now() - t0 < warmup) await client.phoneNumbers.list();

  let calls = 0;
  const c0 = process.cpuUsage();
  t0 = now();
  let t;
  do {
    await client.phoneNumbers.list();
    calls++;
    t = now();
  } while (t - t0 < seconds);
  const c = process.cpuUsage(c0);
  const cpu = (c.user + c.system) / 1e6;
  console.log(`calls=${calls} wall=${(t - t0).toFixed(6)} cpu=${cpu.toFixed(6)} bytes=0`);
}

const [mode, seconds, warmup, count] = process.argv.slice(2);
(mode === 'paths' ? paths() : bench(Number(seconds), Number(warmup), Number(count))).catch((e) => {
  console.error(e);
  process.exit(1);
});
