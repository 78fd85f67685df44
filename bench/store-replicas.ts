/**
 * Pairs (bench/kme-pairs.ts: enc_keys at kme-a, dec_keys at kme-b) in one run across three
 * deployments of the same two sites, runs alternating a, b, c, a, b, c so that the machine's other
 * load hits each alike:
 *   (a) SQLite, one `qks kme` process per KME;
 *   (b) PostgreSQL (a server of its own, one database per KME), one process per KME, no HAProxy;
 *   (c) PostgreSQL (another server), two replicas per KME behind a real HAProxy per site.
 * CPU per pair is split into the KME processes (summed over replicas), the PostgreSQL server (the
 * postmaster and all its children, reaped ones included) and HAProxy, each read from /proc.
 *
 *   npm run build && node dist/bench/store-replicas.js [--levels 1,16] [--seconds 8] [--runs 3]
 *     [--warmup-seconds 2] [--pairs 20000] [--rate-bps 500000] [--capacity-blocks 100000]
 *     [--durability normal|full] [--lease-ms 3000] [--log-level info]
 */
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, loadavg } from 'node:os';
import { parseArgs } from 'node:util';
import type { Deployment } from '../src/cli/init.js';
import { freePorts } from '../src/cli/ports.js';
import { writeReplicas } from '../src/cli/replicas.js';
import { Haproxy } from '../test/helpers/haproxy.js';
import { KmeProcesses } from '../test/helpers/kme-process.js';
import { startPostgres, type PgServer } from '../test/helpers/postgres.js';
import { createDeployment } from '../test/helpers/two-kmes.js';
import {
  blocksAt,
  childrenOf,
  clientCpuMs,
  cpuMs,
  drivePairs,
  median,
  saePool,
  serverCpuMs,
  sleep,
} from './pair-load.js';

const { values: opt } = parseArgs({
  options: {
    levels: { type: 'string', default: '1,16' },
    seconds: { type: 'string', default: '8' },
    runs: { type: 'string', default: '3' },
    'warmup-seconds': { type: 'string', default: '2' },
    pairs: { type: 'string', default: '20000' },
    'rate-bps': { type: 'string', default: '500000' },
    'capacity-blocks': { type: 'string', default: '100000' },
    durability: { type: 'string', default: 'normal' },
    'lease-ms': { type: 'string', default: '3000' },
    'log-level': { type: 'string', default: 'info' },
  },
});
const num = (name: keyof typeof opt) => {
  const v = Number(opt[name]);
  if (!(v > 0)) throw new Error(`--${name} must be a positive number`);
  return v;
};
const levels = opt.levels.split(',').map(Number);
const [seconds, runs, warmupSeconds, maxPairs] = [num('seconds'), num('runs'), num('warmup-seconds'), num('pairs')];
const [rateBps, capacity, leaseMs] = [num('rate-bps'), num('capacity-blocks'), num('lease-ms')];
if (opt.durability !== 'normal' && opt.durability !== 'full') throw new Error('--durability: normal or full');
const full = opt.durability === 'full';
const BLOCK_BITS = 256;
const WARMUP_PAIRS = 2000;

// Like for like: `normal` commits without waiting for the disk in both stores (SQLite
// synchronous=NORMAL, PostgreSQL synchronous_commit=off: a power cut may lose the last commits,
// never corrupt); `full` waits for an fsync at every commit in both (the shipped SQLite default).
const pgSettings = { fsync: 'on', synchronous_commit: full ? 'on' : 'off' };
const siteOptions = () => ({
  rateBps,
  capacityBlocks: capacity,
  blockBits: BLOCK_BITS,
  // The link has run long enough that each KME starts with its own share full.
  epochMs: Date.now() - ((2 * capacity * BLOCK_BITS) / rateBps) * 1000 - 5000,
  logLevel: opt['log-level'],
});
const editConfig = (file: string, change: Record<string, unknown>) =>
  writeFileSync(file, JSON.stringify({ ...JSON.parse(readFileSync(file, 'utf8')), ...change }, null, 2));

interface Variant {
  readonly name: string;
  readonly deployment: Deployment;
  readonly procs: KmeProcesses;
  readonly names: string[];
  readonly pg?: PgServer;
  readonly haproxyPids: number[];
}
const variants: Variant[] = [];
const proxies: Haproxy[] = [];
const servers: PgServer[] = [];

async function sqliteVariant(): Promise<Variant> {
  const deployment = await createDeployment(siteOptions());
  for (const c of deployment.configs) editConfig(c.file, { store_synchronous: full ? 'FULL' : 'NORMAL' });
  return {
    name: '(a) SQLite',
    deployment,
    procs: new KmeProcesses(deployment),
    names: ['kme-a', 'kme-b'],
    haproxyPids: [],
  };
}

async function postgresVariant(): Promise<Variant> {
  const pg = await startPostgres({ settings: pgSettings });
  servers.push(pg);
  const deployment = await createDeployment(siteOptions());
  for (const c of deployment.configs)
    editConfig(c.file, { store: 'postgres', postgres: { url: await pg.createDatabase() } });
  const procs = new KmeProcesses(deployment);
  return { name: '(b) PostgreSQL', deployment, procs, names: ['kme-a', 'kme-b'], pg, haproxyPids: [] };
}

/** As `qks init --replicas 2` writes it (test/helpers/replica-lab.ts starts the same). */
async function replicasVariant(): Promise<Variant> {
  const pg = await startPostgres({ settings: pgSettings });
  servers.push(pg);
  const deployment = await createDeployment(siteOptions());
  const urls = new Map<string, string>();
  for (const { kme } of deployment.configs) urls.set(kme, await pg.createDatabase());
  const sites = writeReplicas(deployment, {
    count: 2,
    postgresUrl: (kme) => urls.get(kme)!,
    ports: await freePorts(2 * 2 * deployment.configs.length),
    leaseMs,
  });
  const before = new Set(childrenOf(process.pid, 'haproxy'));
  for (const site of sites) {
    const { config } = deployment.configs.find((c) => c.kme === site.kme)!;
    proxies.push(await Haproxy.run(site.haproxyFile, [config.sae_api, config.kme_api]));
  }
  const haproxyPids = childrenOf(process.pid, 'haproxy').filter((p) => !before.has(p));
  // HAProxy runs in one process per site (threads inside): each must be found, or its CPU is lost.
  if (haproxyPids.length !== sites.length) throw new Error(`found ${haproxyPids.length} HAProxy processes`);
  const configs = sites.flatMap((s) =>
    s.replicas.map((r) => ({ kme: `${s.kme}-${r.name}`, file: r.file, config: r.config })),
  );
  return {
    name: '(c) PostgreSQL, 2 replicas + HAProxy',
    deployment,
    procs: new KmeProcesses({ ...deployment, configs }),
    names: configs.map((c) => c.kme),
    pg,
    haproxyPids,
  };
}

/** CPU so far (ms) of a variant's KME processes, its PostgreSQL server, its HAProxies. */
const cpuOf = (v: Variant) => ({
  kmes: v.names.reduce((sum, n) => sum + cpuMs(v.procs.pid(n)!), 0),
  pg: v.pg ? serverCpuMs(v.pg.pid()) : 0,
  haproxy: v.haproxyPids.reduce((sum, p) => sum + cpuMs(p), 0),
  client: clientCpuMs(),
});
type Cpu = ReturnType<typeof cpuOf>;
const perSecond = (a: Cpu, b: Cpu, s: number) => ({
  kmes: (b.kmes - a.kmes) / 1000 / s,
  pg: (b.pg - a.pg) / 1000 / s,
  haproxy: (b.haproxy - a.haproxy) / 1000 / s,
  client: (b.client - a.client) / 1000 / s,
});

interface Run {
  pairsPerSecond: number;
  p50: number;
  /** CPU time per wall second (1 = one core busy). */
  cpu: ReturnType<typeof perSecond>;
  /** Transactions the PostgreSQL server ended per pair (NaN with SQLite). */
  txPerPair: number;
}

/**
 * Transactions ended so far on a server, from pg_stat_database. Backends report them within about a
 * second, at both ends of a run alike under steady load, so a run's difference is close.
 */
const transactions = async (pg?: PgServer) =>
  pg
    ? Number((await pg.sql<{ n: string }>('SELECT sum(xact_commit + xact_rollback) AS n FROM pg_stat_database'))[0]!.n)
    : NaN;

async function measure(v: Variant, concurrency: number): Promise<Run> {
  for (const n of v.names) if (!v.procs.isRunning(n)) throw new Error(`${v.name}: ${n} exited; see its .out`);
  const master = saePool(v.deployment, 'sae-a1', concurrency);
  const slave = saePool(v.deployment, 'sae-b1', concurrency);
  // Warm-up: connections open (through HAProxy, spread over the replicas), TLS set up, JIT warm.
  await drivePairs(master, slave, concurrency, WARMUP_PAIRS, warmupSeconds * 1000);
  const tx0 = await transactions(v.pg);
  const cpu0 = cpuOf(v);
  const t0 = performance.now();
  const latencies = await drivePairs(master, slave, concurrency, maxPairs, seconds * 1000);
  const elapsed = (performance.now() - t0) / 1000;
  const cpu1 = cpuOf(v);
  const tx1 = await transactions(v.pg);
  await Promise.all([master.close(), slave.close()]);
  return {
    pairsPerSecond: latencies.length / elapsed,
    p50: median(latencies),
    cpu: perSecond(cpu0, cpu1, elapsed),
    txPerPair: (tx1 - tx0) / latencies.length,
  };
}

/** Waits until both sites of a variant hold `need` blocks in each share (at most `ms`). */
async function waitForBlocks(v: Variant, need: number, ms: number): Promise<void> {
  const pools = [saePool(v.deployment, 'sae-a1', 1), saePool(v.deployment, 'sae-b1', 1)];
  try {
    const deadline = Date.now() + ms;
    for (const pool of pools) {
      for (;;) {
        const b = await blocksAt(pool).catch(() => ({ own_blocks: 0, peer_blocks: 0 }));
        if (b.own_blocks >= need && b.peer_blocks >= need) break;
        if (Date.now() > deadline) throw new Error(`${v.name}: fewer than ${need} blocks after ${ms} ms`);
        await sleep(500);
      }
    }
  } finally {
    await Promise.all(pools.map((p) => p.close()));
  }
}

const stopAll = async () => {
  for (const v of variants) await v.procs.killAll();
  await Promise.all(proxies.map((p) => p.stop()));
  for (const pg of servers) await pg.stop();
  for (const v of variants) rmSync(v.deployment.dir, { recursive: true, force: true });
};
process.on('SIGINT', () => void stopAll().finally(() => process.exit(130)));

const pct = (x: number) => `${(x * 100).toFixed(0)}%`;
try {
  // One variant at a time takes in the link's history, so that none starves the others.
  for (const make of [sqliteVariant, postgresVariant, replicasVariant]) {
    const t = performance.now();
    const v = await make();
    variants.push(v);
    await Promise.all(v.names.map((n) => v.procs.start(n)));
    await waitForBlocks(v, Math.floor(capacity * 0.99), 300_000);
    console.error(`${v.name}: pools full after ${((performance.now() - t) / 1000).toFixed(0)} s`);
  }
  // Full pools need not mean the history is all in: wait (at most 60 s) until no KME is busy.
  for (let i = 0; i < 60; i++) {
    const before = variants.map(cpuOf);
    await sleep(1000);
    if (variants.every((v, j) => cpuOf(v).kmes - before[j]!.kmes < 300)) break;
  }
  // What each deployment burns with no requests: the link's blocks, leases, timers.
  const IDLE_SECONDS = 5;
  const idle0 = variants.map(cpuOf);
  await sleep(IDLE_SECONDS * 1000);
  const idle = variants.map((v, i) => perSecond(idle0[i]!, cpuOf(v), IDLE_SECONDS));
  const loadBefore = loadavg()[0]!;

  const results = new Map<string, Run[]>();
  for (const level of levels) {
    for (let i = 0; i < runs; i++) {
      for (const [j, v] of variants.entries()) {
        // Every run must be able to spend its whole budget, or the pool, not the KMEs, is measured.
        await waitForBlocks(v, maxPairs + WARMUP_PAIRS, 60_000);
        const r = await measure(v, level);
        results.set(`${level}/${j}`, [...(results.get(`${level}/${j}`) ?? []), r]);
        console.error(
          `concurrency ${level}, run ${i + 1}, ${v.name}: ${r.pairsPerSecond.toFixed(0)} pairs/s, ` +
            `p50 ${r.p50.toFixed(2)} ms, CPU KMEs ${pct(r.cpu.kmes)} PostgreSQL ${pct(r.cpu.pg)} ` +
            `HAProxy ${pct(r.cpu.haproxy)} client ${pct(r.cpu.client)}` +
            (v.pg ? `, ${r.txPerPair.toFixed(1)} PostgreSQL transactions/pair` : ''),
        );
      }
    }
  }

  const us = (r: Run, x: number) => (x / r.pairsPerSecond) * 1e6;
  const server = (r: Run) => r.cpu.kmes + r.cpu.pg + r.cpu.haproxy;
  const rows: string[] = [];
  const ratioRows: string[] = [];
  for (const level of levels) {
    const of = (j: number) => results.get(`${level}/${j}`)!;
    for (const [j, v] of variants.entries()) {
      const m = (f: (r: Run) => number) => median(of(j).map(f));
      rows.push(
        `| ${level} | ${v.name} | ${m((r) => r.pairsPerSecond).toFixed(0)} | ${m((r) => r.p50).toFixed(2)} | ` +
          `${m((r) => us(r, r.cpu.kmes)).toFixed(0)} | ${m((r) => us(r, r.cpu.pg)).toFixed(0)} | ` +
          `${m((r) => us(r, r.cpu.haproxy)).toFixed(0)} | ${m((r) => us(r, server(r))).toFixed(0)} | ` +
          `${m((r) => us(r, r.cpu.client)).toFixed(0)} | ${v.pg ? m((r) => r.txPerPair).toFixed(1) : '–'} |`,
      );
    }
    // Ratios of runs taken side by side (run i of each variant), then their median.
    const ratio = (x: number, y: number, f: (r: Run) => number) =>
      median(of(x).map((r, i) => f(r) / f(of(y)[i]!))).toFixed(2);
    const perPair = (r: Run) => us(r, server(r));
    ratioRows.push(
      `| ${level} | ${ratio(1, 0, (r) => r.pairsPerSecond)} | ${ratio(2, 1, (r) => r.pairsPerSecond)} | ` +
        `${ratio(1, 0, perPair)} | ${ratio(2, 1, perPair)} |`,
    );
  }

  console.log(
    `enc_keys + dec_keys pairs across two sites (${cpus().length} × ${cpus()[0]?.model ?? 'CPU'}, ` +
      `Node ${process.version}); each run ${seconds} s or ${maxPairs} pairs after ${warmupSeconds} s of ` +
      `warm-up; median of ${runs} runs, variants alternating; durability ${opt.durability}; ` +
      `load average ${loadBefore.toFixed(1)} before the runs.\n`,
  );
  console.log(
    '| concurrency | variant | pairs/s | pair p50 ms | CPU µs/pair KMEs | PostgreSQL | HAProxy | ' +
      'KMEs + PostgreSQL + HAProxy | client | PostgreSQL transactions/pair |',
  );
  console.log(`|${' --- |'.repeat(10)}`);
  console.log(rows.join('\n'));
  console.log('\n| concurrency | pairs/s (b)/(a) | pairs/s (c)/(b) | CPU/pair (b)/(a) | CPU/pair (c)/(b) |');
  console.log(`|${' --- |'.repeat(5)}`);
  console.log(ratioRows.join('\n'));
  console.log(
    `\nIdle (no requests, the link at ${rateBps} bit/s), CPU per wall second: ` +
      variants
        .map(
          (v, i) =>
            `${v.name}: KMEs ${pct(idle[i]!.kmes)}, PostgreSQL ${pct(idle[i]!.pg)}, HAProxy ${pct(idle[i]!.haproxy)}`,
        )
        .join('; ') +
      '.',
  );
  const args = Object.entries(opt).map(([k, v]) => `--${k} ${String(v)}`);
  console.log(`\nReproduce: npm run build && node dist/bench/store-replicas.js ${args.join(' ')}`);
} finally {
  await stopAll();
}
process.exit(0);
