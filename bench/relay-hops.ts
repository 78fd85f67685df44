/**
 * Key delivery over 1, 2 and 3 links of line:4 (kme-a - kme-b - kme-c - kme-d), and within kme-a,
 * in the same run. One pair = sae-a1's POST enc_keys at kme-a for a slave at kme-a, kme-b, kme-c or
 * kme-d (one 256-bit key; a relayed one is reserved at the slave's KME before kme-a answers), then
 * the slave's POST dec_keys at its KME. Every KME runs as its own `qks kme` process; the SAEs use
 * mutual TLS with keep-alive. Also: the link material each relayed key consumed, per link, from
 * the KMEs' own pool counts.
 *
 *   npm run build && node dist/bench/relay-hops.js [--seconds 8] [--runs 3] [--concurrency 16]
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { closeSync, openSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { Pool } from 'undici';
import { portAnswers } from '../src/cli/ports.js';
import { builtInTopology } from '../src/domain/topology.js';
import { createDeployment } from '../test/helpers/two-kmes.js';
import { summarise, table } from './stats.js';

const BIN = fileURLToPath(new URL('../../bin/qks.js', import.meta.url));
const BLOCK_BITS = 256;
const { values: opt } = parseArgs({
  options: {
    seconds: { type: 'string', default: '8' },
    runs: { type: 'string', default: '3' },
    concurrency: { type: 'string', default: '16' },
  },
});
const seconds = Number(opt.seconds);
const runs = Number(opt.runs);
const concurrency = Number(opt.concurrency);

// Pools full from the start (a link that has run long), refilled slowly: what is measured is the KMEs.
const capacity = 400_000;
const rateBps = 1_000;
const deployment = await createDeployment({
  topology: builtInTopology('line:4'),
  rateBps,
  capacityBlocks: capacity,
  blockBits: BLOCK_BITS,
  epochMs: Date.now() - ((2 * capacity * BLOCK_BITS) / rateBps) * 1000 - 5000,
  logLevel: 'warn',
});
let stopping = false;
const children: ChildProcess[] = deployment.configs.map((c) => {
  const out = openSync(join(deployment.dir, `${c.kme}.log`), 'a');
  const child = spawn(process.execPath, [BIN, 'kme', '--config', c.file], { stdio: ['ignore', out, 'inherit'] });
  closeSync(out);
  child.once('exit', (code, signal) => {
    if (stopping) return;
    console.error(`${c.kme} exited (${signal ?? code}) during the benchmark`);
    process.exit(1);
  });
  return child;
});
process.on('exit', () => children.forEach((c) => c.kill('SIGKILL')));
for (const c of deployment.configs) {
  while (!(await portAnswers(c.config.sae_api.port))) await new Promise((r) => setTimeout(r, 100));
}

const pools = new Map<string, Pool>();
const client = (sae: string) => {
  let pool = pools.get(sae);
  if (!pool) {
    const creds = deployment.saes.find((s) => s.id === sae)!;
    const { config } = deployment.configs.find((c) => c.kme === creds.kme)!;
    pool = new Pool(`https://127.0.0.1:${config.sae_api.port}`, {
      connections: concurrency,
      connect: { ca: readFileSync(deployment.ca), cert: readFileSync(creds.cert), key: readFileSync(creds.key) },
    });
    pools.set(sae, pool);
  }
  return pool;
};
async function call<T>(sae: string, path: string, body?: unknown): Promise<T> {
  const res = await client(sae).request({
    method: body === undefined ? 'GET' : 'POST',
    path,
    ...(body === undefined ? {} : { body: JSON.stringify(body), headers: { 'content-type': 'application/json' } }),
  });
  const text = await res.body.text();
  if (res.statusCode !== 200) throw new Error(`${path}: ${res.statusCode} ${text}`);
  return JSON.parse(text) as T;
}

/** One pair: a key from sae-a1 for `slave`, fetched by it; resolves with its round trip in ms. */
async function pair(slave: string): Promise<number> {
  const started = performance.now();
  const { keys } = await call<{ keys: Array<{ key_ID: string }> }>('sae-a1', `/api/v1/keys/${slave}/enc_keys`, {});
  await call(slave, `/api/v1/keys/sae-a1/dec_keys`, { key_IDs: [{ key_ID: keys[0]!.key_ID }] });
  return performance.now() - started;
}

/** Pairs one after another for `seconds`: their latencies. */
async function latencies(slave: string): Promise<number[]> {
  const out: number[] = [];
  const end = performance.now() + seconds * 1000;
  while (performance.now() < end) out.push(await pair(slave));
  return out;
}

/** Pairs per second with `concurrency` pairs in flight for `seconds`. */
async function throughput(slave: string): Promise<number> {
  let done = 0;
  const end = performance.now() + seconds * 1000;
  const started = performance.now();
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (performance.now() < end) {
        await pair(slave);
        done++;
      }
    }),
  );
  return done / ((performance.now() - started) / 1000);
}

/** Blocks in `kme`'s own share of its link to the next KME, from its SAE's status (256-bit keys = blocks). */
const ownBlocks = async (master: string, slave: string) =>
  (await call<{ stored_key_count: number }>(master, `/api/v1/keys/${slave}/status`)).stored_key_count;

const targets = [
  { slave: 'sae-a2', links: 0, label: 'same KME (no link)' },
  { slave: 'sae-b1', links: 1, label: '1 link (direct)' },
  { slave: 'sae-c1', links: 2, label: '2 links (1 trusted node)' },
  { slave: 'sae-d1', links: 3, label: '3 links (2 trusted nodes)' },
];
for (const t of targets) await latencies(t.slave).then(() => undefined); // warm every path once
const lat = new Map(targets.map((t) => [t.slave, [] as number[]]));
const rates = new Map(targets.map((t) => [t.slave, [] as number[]]));
for (let run = 0; run < runs; run++) {
  // Interleaved, so that a noisy moment of the machine does not fall on one path only.
  for (const t of targets) lat.get(t.slave)!.push(...(await latencies(t.slave)));
  for (const t of targets) rates.get(t.slave)!.push(await throughput(t.slave));
}

// Material: each link's sending share before and after 1000 relayed keys from kme-a to kme-d.
const shares = [
  ['sae-a1', 'sae-b1'],
  ['sae-b1', 'sae-c1'],
  ['sae-c1', 'sae-d1'],
] as const;
const before = await Promise.all(shares.map(([m, s]) => ownBlocks(m, s)));
const KEYS = 1000;
for (let i = 0; i < KEYS; i++) await pair('sae-d1');
const after = await Promise.all(shares.map(([m, s]) => ownBlocks(m, s)));

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const direct = median(rates.get('sae-b1')!);
console.log(`## Relay hops on line:4 (${new Date().toISOString().slice(0, 10)})\n`);
console.log(
  table(
    [
      'slave at',
      'pair latency p50 (ms)',
      'p99 (ms)',
      `pairs/s at ${concurrency} in flight (median of ${runs})`,
      'vs direct',
    ],
    targets.map((t) => {
      const r = median(rates.get(t.slave)!);
      return [t.label, summarise(lat.get(t.slave)!), r.toFixed(0), (r / direct).toFixed(2)];
    }),
  ),
);
console.log('\nLink material each relayed key (256 bits, one per request) took, kme-a to kme-d:\n');
console.log(
  table(
    ['link (sending share)', 'blocks used for 1000 keys', 'bits per key bit'],
    shares.map(([m, s], i) => {
      const used = before[i]! - after[i]!;
      return [`${m.slice(4, 5)}-${s.slice(4, 5)}`, String(used), ((used * BLOCK_BITS) / (KEYS * 256)).toFixed(2)];
    }),
  ),
);
console.log(
  '\n(The links refill at 1 kbit/s: about two blocks a second per share come in meanwhile.)\n' +
    `reproduce: npm run build && node dist/bench/relay-hops.js --seconds ${seconds} --runs ${runs} --concurrency ${concurrency}`,
);
stopping = true;
await Promise.all([...pools.values()].map((p) => p.close()));
for (const c of children) c.kill('SIGTERM');
await new Promise((r) => setTimeout(r, 500));
rmSync(deployment.dir, { recursive: true, force: true });
process.exit(0);
