/**
 * Throughput of key delivery across two KMEs. One pair = sae-a1's POST enc_keys at kme-a for
 * sae-b1 (one key of the default size; kme-a reserves it at kme-b before answering), then
 * sae-b1's POST dec_keys at kme-b for that key ID. Each KME runs as its own `qks kme` process so
 * that its CPU time can be read from /proc; the SAEs use mutual TLS with keep-alive.
 *
 *   npm run bench -- [--levels 1,16,64] [--seconds 10] [--pairs 100000] [--runs 3]
 *                    [--warmup-seconds 2] [--rate-bps 1000000] [--capacity-blocks 1000000]
 *                    [--log-level info] [--synchronous FULL|EXTRA|NORMAL] [--profile DIR]
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { closeSync, openSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { cpus } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import type { KeyContainer } from '../src/domain/etsi-messages.js';
import { portAnswers } from '../src/cli/ports.js';
import { createDeployment } from '../test/helpers/two-kmes.js';
import { blocksAt, call, saePool } from './pair-load.js';

// From dist/bench/ up to the package root.
const BIN = fileURLToPath(new URL('../../bin/qks.js', import.meta.url));
const BLOCK_BITS = 256;

const { values: opt } = parseArgs({
  options: {
    levels: { type: 'string', default: '1,16,64' },
    seconds: { type: 'string', default: '10' },
    pairs: { type: 'string', default: '100000' },
    runs: { type: 'string', default: '3' },
    'warmup-seconds': { type: 'string', default: '2' },
    'rate-bps': { type: 'string', default: '1000000' },
    'capacity-blocks': { type: 'string', default: '1000000' },
    'log-level': { type: 'string', default: 'info' },
    synchronous: { type: 'string', default: 'FULL' },
    profile: { type: 'string' },
  },
});
const num = (name: keyof typeof opt) => {
  const v = Number(opt[name]);
  if (!(v > 0)) throw new Error(`--${name} must be a positive number`);
  return v;
};
const levels = opt.levels.split(',').map(Number);
const seconds = num('seconds');
const maxPairs = num('pairs');
const runs = num('runs');
const warmupSeconds = num('warmup-seconds');
const rateBps = num('rate-bps');
const capacity = num('capacity-blocks');
const WARMUP_PAIRS = 5000;

// The link has run long enough that each KME starts with its own share full (`capacity` blocks,
// one 256-bit key each): the KMEs take that history in at start-up, before anything is measured.
const deployment = await createDeployment({
  rateBps,
  capacityBlocks: capacity,
  blockBits: BLOCK_BITS,
  epochMs: Date.now() - ((2 * capacity * BLOCK_BITS) / rateBps) * 1000 - 5000,
  logLevel: opt['log-level'],
});
// The store's durability (docs/configuration.md): FULL as shipped, NORMAL to compare.
for (const c of deployment.configs) {
  writeFileSync(
    c.file,
    JSON.stringify({ ...JSON.parse(readFileSync(c.file, 'utf8')), store_synchronous: opt.synchronous }),
  );
}
let stopping = false;
const children: ChildProcess[] = deployment.configs.map((c) => {
  // Request logs go to a file, as they would in service; a KME that dies says why on our stderr.
  const out = openSync(join(deployment.dir, `${c.kme}.log`), 'a');
  const profile = opt.profile ? ['--cpu-prof', `--cpu-prof-dir=${opt.profile}`] : [];
  const child = spawn(process.execPath, [...profile, BIN, 'kme', '--config', c.file], {
    stdio: ['ignore', out, 'inherit'],
  });
  closeSync(out);
  child.once('exit', (code, signal) => {
    if (stopping) return;
    console.error(`${c.kme} exited (${signal ?? code}) during the benchmark`);
    process.exit(1);
  });
  return child;
});
process.on('exit', () => children.forEach((c) => c.kill('SIGKILL')));
process.on('SIGINT', () => process.exit(130));

const CLOCK_TICKS = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;
/** utime + stime of a process, in ms (fields 14 and 15 of /proc/PID/stat). */
const cpuMs = (child: ChildProcess) => {
  const fields = readFileSync(`/proc/${child.pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
  return ((Number(fields[11]) + Number(fields[12])) * 1000) / CLOCK_TICKS;
};
const clientCpuMs = () => {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1000;
};
const cpuNow = () => [cpuMs(children[0]!), cpuMs(children[1]!), clientCpuMs()] as const;
/** Of that, the time in the kernel (stime; the client's from process.cpuUsage().system). */
const sysMs = (child: ChildProcess) =>
  (Number(readFileSync(`/proc/${child.pid}/stat`, 'utf8').split(') ')[1]!.split(' ')[12]) * 1000) / CLOCK_TICKS;
const sysNow = () => [sysMs(children[0]!), sysMs(children[1]!), process.cpuUsage().system / 1000] as const;

const client = (sae: string, connections: number) => saePool(deployment, sae, connections);

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const median = (xs: readonly number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

interface Run {
  pairs: number;
  pairsPerSecond: number;
  p50: number;
  p99: number;
  /** Medians of the enc_keys call and of the dec_keys call of a pair. */
  encP50: number;
  decP50: number;
  /** CPU time per wall second (1 = one core busy). */
  cpu: { kmeA: number; kmeB: number; client: number };
  /** The kernel's share of each process's CPU time (system calls: sockets, files). */
  sys: { kmeA: number; kmeB: number; client: number };
}

async function measure(concurrency: number): Promise<Run> {
  const master = client('sae-a1', concurrency);
  const slave = client('sae-b1', concurrency);
  /** One pair; returns how long its enc_keys took (that includes kme-a's round trip to kme-b). */
  const pair = async () => {
    const t = performance.now();
    const enc = await call<KeyContainer>(master, '/api/v1/keys/sae-b1/enc_keys', { number: 1 });
    const encMs = performance.now() - t;
    const key = enc.keys[0]!;
    const dec = await call<KeyContainer>(slave, '/api/v1/keys/sae-a1/dec_keys', { key_IDs: [{ key_ID: key.key_ID }] });
    // Both SAEs must hold the same key; compared here, never printed.
    if (dec.keys[0]?.key_ID !== key.key_ID || dec.keys[0].key !== key.key)
      throw new Error('the SAEs got different keys');
    return encMs;
  };
  // Concurrent loops share one budget of pairs and one deadline: whichever comes first ends the run.
  const latencies: number[] = [];
  const encTimes: number[] = [];
  const decTimes: number[] = [];
  const drive = async (budget: number, ms: number, record: boolean) => {
    const end = performance.now() + ms;
    let left = budget;
    const loop = async () => {
      while (left > 0 && performance.now() < end) {
        left--;
        const t = performance.now();
        const encMs = await pair();
        if (!record) continue;
        const ms = performance.now() - t;
        latencies.push(ms);
        encTimes.push(encMs);
        decTimes.push(ms - encMs);
      }
    };
    await Promise.all(Array.from({ length: concurrency }, loop));
  };
  // Warm-up: connections open, TLS sessions set up, JIT warm.
  await drive(WARMUP_PAIRS, warmupSeconds * 1000, false);
  const cpu0 = cpuNow();
  const sys0 = sysNow();
  const t0 = performance.now();
  await drive(maxPairs, seconds * 1000, true);
  const elapsed = (performance.now() - t0) / 1000;
  const cpu1 = cpuNow();
  const sys1 = sysNow();
  await Promise.all([master.close(), slave.close()]);
  const quantile = (q: number, xs = latencies) => [...xs].sort((a, b) => a - b)[Math.floor(q * xs.length)]!;
  const perSecond = (i: 0 | 1 | 2) => (cpu1[i] - cpu0[i]) / 1000 / elapsed;
  const sysShare = (i: 0 | 1 | 2) => (sys1[i] - sys0[i]) / Math.max(1, cpu1[i] - cpu0[i]);
  return {
    pairs: latencies.length,
    pairsPerSecond: latencies.length / elapsed,
    p50: quantile(0.5),
    p99: quantile(0.99),
    encP50: quantile(0.5, encTimes),
    decP50: quantile(0.5, decTimes),
    cpu: { kmeA: perSecond(0), kmeB: perSecond(1), client: perSecond(2) },
    sys: { kmeA: sysShare(0), kmeB: sysShare(1), client: sysShare(2) },
  };
}

// Wait until both KMEs listen and have taken in the link's history, so that the pools are full.
const fillStart = performance.now();
for (const c of deployment.configs) {
  while (!((await portAnswers(c.config.sae_api.port)) && (await portAnswers(c.config.kme_api.port)))) await sleep(100);
}
const admin = [client('sae-a1', 1), client('sae-b1', 1)] as const;
const target = Math.floor(capacity * 0.99);
for (const pool of admin) {
  for (;;) {
    const b = await blocksAt(pool);
    if (b.own_blocks >= target && b.peer_blocks >= target) break;
    await sleep(500);
  }
}
console.error(
  `pools full (${capacity} blocks per share) after ${((performance.now() - fillStart) / 1000).toFixed(0)} s`,
);
// Full pools need not mean the link's history is all in: wait (at most 60 s) until neither KME
// still takes it in at full speed, so that no run pays for the start-up.
for (let i = 0; i < 60; i++) {
  const before = cpuNow();
  await sleep(1000);
  const after = cpuNow();
  if (after[0] - before[0] < 300 && after[1] - before[1] < 300) break;
}
await sleep(1000);
// What the KMEs burn with no requests at all: taking in the link's blocks, timers.
const IDLE_SECONDS = 5;
const idle0 = cpuNow();
await sleep(IDLE_SECONDS * 1000);
const idle1 = cpuNow();
const idle = [0, 1].map((i) => (idle1[i]! - idle0[i]!) / 1000 / IDLE_SECONDS);

const pct = (x: number) => `${(x * 100).toFixed(0)}%`;
const rows: string[] = [];
for (const level of levels) {
  const results: Run[] = [];
  for (let i = 0; i < runs; i++) {
    // Every run must be able to spend its whole budget, or the pool, not the KMEs, is measured
    // (a request refused for want of material would also stop the benchmark with an error).
    const need = maxPairs + WARMUP_PAIRS;
    if ((await blocksAt(admin[0])).own_blocks < need) {
      throw new Error(`kme-a holds fewer than ${need} keys for sae-a1; raise --capacity-blocks or lower --pairs`);
    }
    const r = await measure(level);
    results.push(r);
    console.error(
      `concurrency ${level}, run ${i + 1}: ${r.pairs} pairs, ${r.pairsPerSecond.toFixed(0)} pairs/s, ` +
        `p50 ${r.p50.toFixed(2)} ms (enc_keys ${r.encP50.toFixed(2)}, dec_keys ${r.decP50.toFixed(2)}), ` +
        `p99 ${r.p99.toFixed(2)} ms, ` +
        `CPU kme-a ${pct(r.cpu.kmeA)} kme-b ${pct(r.cpu.kmeB)} client ${pct(r.cpu.client)} ` +
        `(in the kernel: ${pct(r.sys.kmeA)}, ${pct(r.sys.kmeB)}, ${pct(r.sys.client)} of each)`,
    );
  }
  const m = (f: (r: Run) => number) => median(results.map(f));
  // CPU time one pair costs across all three processes: less sensitive to other load than pairs/s.
  const usPerPair = m((r) => ((r.cpu.kmeA + r.cpu.kmeB + r.cpu.client) / r.pairsPerSecond) * 1e6);
  const ms = (f: (r: Run) => number) => m(f).toFixed(2);
  rows.push(
    `| ${level} | ${m((r) => r.pairsPerSecond).toFixed(0)} | ${ms((r) => r.p50)} | ${ms((r) => r.p99)} | ` +
      `${ms((r) => r.encP50)} | ${ms((r) => r.decP50)} | ${pct(m((r) => r.cpu.kmeA))} | ` +
      `${pct(m((r) => r.cpu.kmeB))} | ${pct(m((r) => r.cpu.client))} | ${usPerPair.toFixed(0)} |`,
  );
}
await Promise.all(admin.map((p) => p.close()));

console.log(
  `enc_keys + dec_keys pairs across two KMEs (${cpus().length} × ${cpus()[0]?.model ?? 'CPU'}, ` +
    `Node ${process.version}); each run ${seconds} s or ${maxPairs} pairs after ${warmupSeconds} s ` +
    `of warm-up; median of ${runs} runs.\n`,
);
console.log(
  '| concurrency | pairs/s | pair p50 ms | pair p99 ms | enc_keys p50 ms | dec_keys p50 ms | ' +
    'CPU kme-a | CPU kme-b | CPU client | CPU µs/pair |',
);
console.log(`|${' --- |'.repeat(10)}`);
console.log(rows.join('\n'));
console.log(
  `\nCPU is per wall-clock second (100% = one core). Idle, with the link delivering ${rateBps} bit/s: ` +
    `kme-a ${pct(idle[0]!)}, kme-b ${pct(idle[1]!)}. KME log level: ${opt['log-level']}.`,
);
const args = Object.entries(opt)
  .filter(([k]) => k !== 'profile')
  .map(([k, v]) => `--${k} ${String(v)}`);
console.log(`\nReproduce: npm run bench -- ${args.join(' ')}`);

stopping = true;
await Promise.all(children.map((c) => new Promise((r) => (c.once('exit', r), c.kill('SIGTERM')))));
rmSync(deployment.dir, { recursive: true, force: true });
process.exit(0);
