/**
 * Throughput of the key delivery across two KMEs: one pair = sae-a1's enc_keys at kme-a for sae-b1
 * (which makes kme-a reserve the key at kme-b), then sae-b1's dec_keys at kme-b. Each KME is its
 * own `qks kme` process; clients use mutual TLS with keep-alive.
 *
 *   npm run bench -- [--levels 1,16,64] [--seconds 5] [--runs 3]
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { Pool } from 'undici';
import { initDeployment } from '../src/cli/init.js';
import { freePorts, portAnswers } from '../src/cli/ports.js';

const BIN = fileURLToPath(new URL('../../bin/qks.js', import.meta.url));
const { values } = parseArgs({
  options: {
    levels: { type: 'string', default: '1,16,64' },
    seconds: { type: 'string', default: '5' },
    runs: { type: 'string', default: '3' },
  },
});
const levels = values.levels.split(',').map(Number);
const seconds = Number(values.seconds);
const runs = Number(values.runs);

const dir = mkdtempSync(join(tmpdir(), 'qks-bench-pairs-'));
const ports = await freePorts(4);
// A realistic 1 Mbit/s link that has been running for a while: each KME starts with its pool full
// (150,000 keys of its own), so key material is never the limit and ingestion costs what it would.
const RATE = 1_000_000;
const CAPACITY = 150_000;
const deployment = await initDeployment({
  dir,
  ports: [
    { sae: ports[0]!, kme: ports[1]! },
    { sae: ports[2]!, kme: ports[3]! },
  ],
  rateBps: RATE,
  capacityBlocks: CAPACITY,
  epochMs: Date.now() - ((4 * CAPACITY * 256) / RATE) * 1000,
  logLevel: 'warn',
});
// e.g. QKS_BENCH_KME_NODE_ARGS="--cpu-prof --cpu-prof-dir=/tmp/prof" to profile the KMEs.
const nodeArgs = (process.env['QKS_BENCH_KME_NODE_ARGS'] ?? '').split(' ').filter(Boolean);
const children: ChildProcess[] = deployment.configs.map((c) =>
  spawn(process.execPath, [...nodeArgs, BIN, 'kme', '--config', c.file], { stdio: ['ignore', 'ignore', 'inherit'] }),
);
process.on('exit', () => children.forEach((c) => c.kill('SIGKILL')));
const client = (sae: string, kmeIndex: number, connections: number) => {
  const creds = deployment.saes.find((s) => s.id === sae)!;
  return new Pool(`https://127.0.0.1:${ports[kmeIndex * 2]}`, {
    connections,
    pipelining: 1,
    connect: { ca: readFileSync(deployment.ca), cert: readFileSync(creds.cert), key: readFileSync(creds.key) },
  });
};

const json = async (pool: Pool, path: string, body?: unknown) => {
  const res = await pool.request({
    method: body === undefined ? 'GET' : 'POST',
    path,
    ...(body === undefined ? {} : { body: JSON.stringify(body), headers: { 'content-type': 'application/json' } }),
  });
  const parsed = (await res.body.json()) as Record<string, unknown>;
  if (res.statusCode !== 200) throw new Error(`${path}: ${res.statusCode} ${JSON.stringify(parsed)}`);
  return parsed;
};

const cpuOf = (pid: number) => {
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
  return (Number(fields[11]) + Number(fields[12])) * 10; // clock ticks (100/s) → ms
};

interface Run {
  pairsPerSecond: number;
  p50: number;
  p99: number;
  cpu: { kmeA: number; kmeB: number; client: number };
}

async function measure(concurrency: number): Promise<Run> {
  const master = client('sae-a1', 0, concurrency);
  const slave = client('sae-b1', 1, concurrency);
  const pair = async () => {
    const got = (await json(master, '/api/v1/keys/sae-b1/enc_keys', { number: 1 })) as {
      keys: Array<{ key_ID: string }>;
    };
    await json(slave, '/api/v1/keys/sae-a1/dec_keys', { key_IDs: [{ key_ID: got.keys[0]!.key_ID }] });
  };
  const loop = async (until: number, latencies: number[] | null) => {
    while (Date.now() < until) {
      const t = performance.now();
      await pair();
      latencies?.push(performance.now() - t);
    }
  };
  await Promise.all(Array.from({ length: concurrency }, () => loop(Date.now() + 1000, null))); // warm-up
  const latencies: number[] = [];
  const cpu0 = [cpuOf(children[0]!.pid!), cpuOf(children[1]!.pid!), process.cpuUsage()] as const;
  const t0 = performance.now();
  const end = Date.now() + seconds * 1000;
  await Promise.all(Array.from({ length: concurrency }, () => loop(end, latencies)));
  const elapsed = (performance.now() - t0) / 1000;
  const clientCpu = process.cpuUsage(cpu0[2]);
  await Promise.all([master.close(), slave.close()]);
  latencies.sort((a, b) => a - b);
  const pct = (q: number) => latencies[Math.min(latencies.length - 1, Math.floor(q * latencies.length))]!;
  return {
    pairsPerSecond: latencies.length / elapsed,
    p50: pct(0.5),
    p99: pct(0.99),
    cpu: {
      kmeA: (cpuOf(children[0]!.pid!) - cpu0[0]) / 1000 / elapsed,
      kmeB: (cpuOf(children[1]!.pid!) - cpu0[1]) / 1000 / elapsed,
      client: (clientCpu.user + clientCpu.system) / 1e6 / elapsed,
    },
  };
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
// Wait until both KMEs listen and have taken in the link's history (their pools are full).
for (const port of ports) while (!(await portAnswers(port))) await new Promise((r) => setTimeout(r, 50));
for (const [sae, kme, slave] of [
  ['sae-a1', 0, 'sae-b1'],
  ['sae-b1', 1, 'sae-a1'],
] as const) {
  const pool = client(sae, kme, 1);
  while (
    ((await json(pool, `/api/v1/keys/${slave}/status`)) as { stored_key_count: number }).stored_key_count <
    CAPACITY * 0.95
  ) {
    await new Promise((r) => setTimeout(r, 500));
  }
  await pool.close();
}
await new Promise((r) => setTimeout(r, 2000));
const rows: string[] = [];
for (const level of levels) {
  const results: Run[] = [];
  for (let i = 0; i < runs; i++) results.push(await measure(level));
  const m = (f: (r: Run) => number) => median(results.map(f));
  rows.push(
    `| ${level} | ${m((r) => r.pairsPerSecond).toFixed(0)} | ${m((r) => r.p50).toFixed(2)} | ${m((r) => r.p99).toFixed(2)} | ` +
      `${(m((r) => r.cpu.kmeA) * 100).toFixed(0)}% | ${(m((r) => r.cpu.kmeB) * 100).toFixed(0)}% | ${(m((r) => r.cpu.client) * 100).toFixed(0)}% |`,
  );
  console.error(`concurrency ${level}: ${results.map((r) => r.pairsPerSecond.toFixed(0)).join(', ')} pairs/s`);
}
console.log(`enc_keys + dec_keys pairs across two KMEs, ${seconds} s per run, median of ${runs} runs:\n`);
console.log('| concurrency | pairs/s | p50 ms | p99 ms | CPU kme-a | CPU kme-b | CPU client |');
console.log('| --- | --- | --- | --- | --- | --- | --- |');
console.log(rows.join('\n'));
console.log(`\nReproduce: npm run bench -- --levels ${values.levels} --seconds ${seconds} --runs ${runs}`);
await Promise.all(children.map((c) => new Promise((r) => (c.once('exit', r), c.kill('SIGTERM')))));
rmSync(dir, { recursive: true, force: true });
process.exit(0);
