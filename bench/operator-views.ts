/**
 * What watching costs: key delivery throughput (enc_keys + dec_keys pairs across two KMEs, as in
 * kme-pairs.ts) with nobody watching, and with the dashboard open (one event stream per KME) and
 * Prometheus scraping both KMEs every second; then how long a /metrics scrape and an overview
 * take. Each KME is its own `qks kme` process; runs alternate so that drifting load hits both.
 *
 *   node dist/bench/operator-views.js [--concurrency 16] [--seconds 8] [--runs 3] [--samples 200]
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { closeSync, openSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { Pool } from 'undici';
import type { KeyContainer } from '../src/domain/etsi-messages.js';
import { portAnswers } from '../src/cli/ports.js';
import { createDeployment } from '../test/helpers/two-kmes.js';
import { summarise, table } from './stats.js';

const BIN = fileURLToPath(new URL('../../bin/qks.js', import.meta.url));
const { values: opt } = parseArgs({
  options: {
    concurrency: { type: 'string', default: '16' },
    seconds: { type: 'string', default: '8' },
    runs: { type: 'string', default: '3' },
    samples: { type: 'string', default: '200' },
  },
});
const concurrency = Number(opt.concurrency);
const seconds = Number(opt.seconds);
const runs = Number(opt.runs);
const samples = Number(opt.samples);
const CAPACITY = 200_000;

// Pools full from the start: the link has run long enough (1 Mbit/s, 256-bit blocks).
const deployment = await createDeployment({
  rateBps: 1_000_000,
  capacityBlocks: CAPACITY,
  epochMs: Date.now() - ((2 * CAPACITY * 256) / 1_000_000) * 1000 - 5000,
  operator: 'operator',
});
const children: ChildProcess[] = deployment.configs.map((c) => {
  const out = openSync(join(deployment.dir, `${c.kme}.log`), 'a');
  const child = spawn(process.execPath, [BIN, 'kme', '--config', c.file], { stdio: ['ignore', out, 'inherit'] });
  closeSync(out);
  return child;
});
process.on('exit', () => children.forEach((c) => c.kill('SIGKILL')));

const portOf = (kme: string) => deployment.configs.find((c) => c.kme === kme)!.config.sae_api.port;
const pool = (cert: string, key: string, kme: string, connections: number) =>
  new Pool(`https://127.0.0.1:${portOf(kme)}`, {
    connections,
    connect: { ca: readFileSync(deployment.ca), cert: readFileSync(cert), key: readFileSync(key) },
  });
const saePool = (sae: string, connections: number) => {
  const s = deployment.saes.find((x) => x.id === sae)!;
  return pool(s.cert, s.key, s.kme, connections);
};
const op = deployment.operator!;
const operator = (kme: string) => pool(op.cert, op.key, kme, 2);

const get = async (p: Pool, path: string, body?: unknown): Promise<string> => {
  const res = await p.request({
    method: body === undefined ? 'GET' : 'POST',
    path,
    ...(body === undefined ? {} : { body: JSON.stringify(body), headers: { 'content-type': 'application/json' } }),
  });
  const text = await res.body.text();
  if (res.statusCode !== 200) throw new Error(`${path}: status ${res.statusCode} ${text.slice(0, 200)}`);
  return text;
};
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const median = (xs: readonly number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

for (const c of deployment.configs) {
  while (!((await portAnswers(c.config.sae_api.port)) && (await portAnswers(c.config.kme_api.port)))) await sleep(100);
}
const opA = operator('kme-a');
const opB = operator('kme-b');
for (const p of [opA, opB]) {
  // Wait for the pools to fill from the link's history.
  while (JSON.parse(await get(p, '/api/v1/admin/overview')).links[0].own_blocks < CAPACITY * 0.99) await sleep(500);
}

/** Pairs per second for `seconds`, optionally with the dashboard open and Prometheus scraping. */
async function pairsPerSecond(watched: boolean): Promise<number> {
  const master = saePool('sae-a1', concurrency);
  const slave = saePool('sae-b1', concurrency);
  const stop = new AbortController();
  const watchers: Array<Promise<unknown>> = [];
  if (watched) {
    for (const p of [opA, opB]) {
      // The dashboard: one event stream per KME, read as it comes.
      watchers.push(
        p
          .request({ method: 'GET', path: '/api/v1/admin/events', signal: stop.signal })
          .then(async (res) => {
            for await (const chunk of res.body) if (stop.signal.aborted || !chunk) break;
          })
          .catch(() => undefined),
      );
      // Prometheus at a 1 s interval (its default is 15 s or more).
      watchers.push(
        (async () => {
          while (!stop.signal.aborted) {
            await get(p, '/metrics');
            await sleep(1000);
          }
        })(),
      );
    }
  }
  let pairs = 0;
  const end = performance.now() + seconds * 1000;
  const t0 = performance.now();
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (performance.now() < end) {
        const enc = JSON.parse(await get(master, '/api/v1/keys/sae-b1/enc_keys', { number: 1 })) as KeyContainer;
        await get(slave, '/api/v1/keys/sae-a1/dec_keys', { key_IDs: [{ key_ID: enc.keys[0]!.key_ID }] });
        pairs++;
      }
    }),
  );
  const rate = pairs / ((performance.now() - t0) / 1000);
  stop.abort();
  await Promise.all(watchers);
  await Promise.all([master.close(), slave.close()]);
  return rate;
}

await pairsPerSecond(false); // warm-up
const quiet: number[] = [];
const watched: number[] = [];
for (let i = 0; i < runs; i++) {
  quiet.push(await pairsPerSecond(false));
  watched.push(await pairsPerSecond(true));
}

const timed = async (path: string) => {
  const ms: number[] = [];
  for (let i = 0; i < samples; i++) {
    const t = performance.now();
    await get(opA, path);
    ms.push(performance.now() - t);
  }
  return summarise(ms);
};
const scrape = await timed('/metrics');
const overview = await timed('/api/v1/admin/overview');
const bytes = (await get(opA, '/metrics')).length;

console.log(
  `\nnode dist/bench/operator-views.js --concurrency ${concurrency} --seconds ${seconds} --runs ${runs} --samples ${samples}\n`,
);
console.log(
  table(
    ['key delivery at concurrency ' + concurrency, 'pairs/s (median of ' + runs + ')', 'runs'],
    [
      ['nobody watching', median(quiet).toFixed(0), quiet.map((r) => r.toFixed(0)).join(', ')],
      ['dashboard open + scrape every 1 s', median(watched).toFixed(0), watched.map((r) => r.toFixed(0)).join(', ')],
    ],
  ),
);
console.log();
console.log(
  table(
    ['request (kme-a, idle, sequential)', 'median ms', 'p99 ms'],
    [
      [`GET /metrics (${bytes} bytes)`, scrape],
      ['GET /api/v1/admin/overview', overview],
    ],
  ),
);
await Promise.all([opA.close(), opB.close()]);
children.forEach((c) => c.kill('SIGTERM'));
await sleep(500);
rmSync(deployment.dir, { recursive: true, force: true });
process.exit(0);
