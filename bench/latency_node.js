// The latency section's Node side (bench/latency.lua runs it, under sim/with-sim; the
// official SDK @linqapp/sdk is the one bench/run installs in BENCH_NODE_DIR):
//   node bench/latency_node.js RUNS MODE
//     against LINQ_SIM_URL/MODE (e.g. slow/50: every answer 50 ms late), one warm-up
//     pass, then RUNS passes of: one call alone, 8 calls with Promise.all, 64 calls
//     with at most 16 at once (16 workers awaiting in turn, under one Promise.all) and
//     64 calls with Promise.all and no limit.  Prints one line per scenario,
//       <id>\twall=<ms>,<ms>,...\tcpu=<ms>,<ms>,...\tconns=<n>,<n>,...
//     (wall: process.hrtime, monotonic; cpu: process.cpuUsage(), user + system; conns:
//     sockets of the process, /proc/self/fd, that were not there after the previous
//     run) in the format of build/bench/latency.tsv.
'use strict';
const sdk = require(require.resolve('@linqapp/sdk', { paths: [process.env.BENCH_NODE_DIR || '.'] }));
const LinqAPIV3 = sdk.LinqAPIV3 || sdk.default;

const url = process.env.LINQ_SIM_URL;
const key = process.env.LINQ_SIM_KEY;
if (!url || !key) throw new Error('run under sim/with-sim');

const [runsArg, mode] = process.argv.slice(2);
const runs = Number(runsArg);
if (!(runs >= 1) || !mode) throw new Error('usage: node bench/latency_node.js RUNS MODE');

const fs = require('fs');

// The process's sockets (inodes): one that appears during a run is a connection it opened.
function sockets() {
  const set = new Set();
  let fds;
  try {
    fds = fs.readdirSync('/proc/self/fd');
  } catch {
    return null;
  }
  for (const fd of fds) {
    try {
      const m = /^socket:\[(\d+)\]$/.exec(fs.readlinkSync(`/proc/self/fd/${fd}`));
      if (m) set.add(m[1]);
    } catch {
      // closed meanwhile
    }
  }
  return set;
}

const client = new LinqAPIV3({ apiKey: key, baseURL: `${url}/${mode}` });

function check(res) {
  if (!Array.isArray(res.phone_numbers) || res.phone_numbers.length === 0) {
    throw new Error('unexpected reply: ' + JSON.stringify(res).slice(0, 200));
  }
}

// n calls, at most `limit` at once (limit >= n: plain Promise.all over n promises).
async function many(n, limit) {
  if (limit >= n) {
    const all = await Promise.all(Array.from({ length: n }, () => client.phoneNumbers.list()));
    all.forEach(check);
    return;
  }
  let next = 0;
  async function worker() {
    while (next < n) {
      next++;
      check(await client.phoneNumbers.list());
    }
  }
  await Promise.all(Array.from({ length: limit }, worker));
}

const SCENARIOS = [
  { id: 'node_one', run: async () => check(await client.phoneNumbers.list()) },
  { id: 'node_all8', run: () => many(8, 8) },
  { id: 'node_all64_c16', run: () => many(64, 16) },
  { id: 'node_all64', run: () => many(64, 64) },
];

async function main() {
  const samples = Object.fromEntries(SCENARIOS.map((s) => [s.id, { wall: [], cpu: [], conns: [] }]));
  for (const s of SCENARIOS) await s.run(); // warm-up: the connections are made
  let before = sockets();
  for (let r = 0; r < runs; r++) {
    for (const s of SCENARIOS) {
      const c0 = process.cpuUsage();
      const t0 = process.hrtime.bigint();
      await s.run();
      const t1 = process.hrtime.bigint();
      const c = process.cpuUsage(c0);
      samples[s.id].wall.push((Number(t1 - t0) / 1e6).toFixed(3));
      samples[s.id].cpu.push(((c.user + c.system) / 1e3).toFixed(3));
      const after = sockets();
      if (after && before) {
        let opened = 0;
        for (const inode of after) if (!before.has(inode)) opened++;
        samples[s.id].conns.push(opened);
      }
      before = after;
    }
  }
  for (const s of SCENARIOS) {
    const x = samples[s.id];
    console.log(`${s.id}\twall=${x.wall.join(',')}\tcpu=${x.cpu.join(',')}\tconns=${x.conns.join(',')}`);
  }
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
