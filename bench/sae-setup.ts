/**
 * Setup time of an SAE pair, broken down as in the thesis (chapter 10): the initiator's get key
 * (enc_keys), send the key IDs and receive the acknowledgement, and the responder's get key with
 * key IDs (dec_keys), on the demo network. KMEs run in `qks demo`, the responder in
 * `qks sae agree --role responder`, each its own process; the initiator runs here.
 *
 *   npm run build && node dist/bench/sae-setup.js [--agreements 1000] [--warmup 50]
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import type { DemoManifest } from '../src/cli/demo.js';
import { freePorts } from '../src/cli/ports.js';
import { Initiator } from '../src/sae/agreement/initiator.js';
import { KmeClient } from '../src/sae/kme-client.js';
import { summarise, table } from './stats.js';

const BIN = fileURLToPath(new URL('../../bin/qks.js', import.meta.url));
const { values } = parseArgs({
  options: { agreements: { type: 'string', default: '1000' }, warmup: { type: 'string', default: '50' } },
});
const agreements = Number(values.agreements);
const warmup = Number(values.warmup);

const children: ChildProcess[] = [];
process.on('exit', () => children.forEach((c) => c.kill('SIGKILL')));
const start = (args: string[]) => {
  const child = spawn(process.execPath, [BIN, ...args], { stdio: ['ignore', 'pipe', 'inherit'] });
  children.push(child);
  return child;
};

const dir = mkdtempSync(join(tmpdir(), 'qks-bench-setup-'));
const manifestFile = join(dir, 'manifest.json');
start(['demo', '--dir', join(dir, 'site'), '--manifest', manifestFile, '--rate', '2000000']);
while (!existsSync(manifestFile)) await new Promise((r) => setTimeout(r, 100));
const manifest = JSON.parse(readFileSync(manifestFile, 'utf8')) as DemoManifest;
const sae = (id: string) => manifest.saes.find((s) => s.id === id)!;

const [port] = await freePorts(1);
const responder = start([
  'sae',
  'agree',
  '--role',
  'responder',
  '--manifest',
  manifestFile,
  '--sae',
  'sae-b1',
  '--peer',
  'sae-a1',
  '--listen',
  `127.0.0.1:${port}`,
]);
const responderTimings: Array<{ kmeMs: number; totalMs: number }> = [];
createInterface({ input: responder.stdout! }).on('line', (line) => {
  const event = JSON.parse(line) as { event: string; timings_ms?: { kmeMs: number; totalMs: number } };
  if (event.event === 'agreed' && event.timings_ms) responderTimings.push(event.timings_ms);
});

const me = sae('sae-a1');
const kme = new KmeClient({ url: manifest.kmes[0]!.url, ca: manifest.ca, cert: me.cert, key: me.key });
const tls = { ca: readFileSync(manifest.ca), cert: readFileSync(me.cert), key: readFileSync(me.key) };
const initiator = new Initiator({
  saeId: 'sae-a1',
  peerSaeId: 'sae-b1',
  peer: { host: '127.0.0.1', port: port! },
  kme,
  tls,
});
// Wait for key material at the KME.
while ((await kme.status('sae-b1')).stored_key_count < agreements + warmup)
  await new Promise((r) => setTimeout(r, 200));

const steps: Record<'getKey' | 'exchange' | 'initiator', number[]> = { getKey: [], exchange: [], initiator: [] };
for (let i = 0; i < warmup + agreements; i++) {
  const a = await initiator.agree(1);
  for (const k of a.keys) k.key.fill(0);
  if (i < warmup) continue;
  steps.getKey.push(a.timings['kmeMs']!);
  steps.exchange.push(a.timings['exchangeMs']!);
  steps.initiator.push(a.timings['totalMs']!);
}
while (responderTimings.length < warmup + agreements) await new Promise((r) => setTimeout(r, 20));
const resp = responderTimings.slice(warmup);

console.log(
  `SAE pair setup on the demo network, ${agreements} agreements after ${warmup} warm-up, one key each (ms):\n`,
);
console.log(
  table(
    ['step', 'median', 'p99', 'thesis (IKE / stunnel / wolfSSL)'],
    [
      ['initiator: get key (enc_keys)', summarise(steps.getKey), '1.2 s / 2.7 s / 2.5 s'],
      ['initiator: send key IDs, receive ACK', summarise(steps.exchange), '0.84 s / 1.26 s / 1.1 s'],
      ['**initiator setup time**', summarise(steps.initiator), '**3.9 s / 4.0 s / 3.7 s**'],
      ['responder: get key with key IDs (dec_keys)', summarise(resp.map((t) => t.kmeMs)), '1.2 s / 1.2 s / 1.1 s'],
      ['**responder setup time**', summarise(resp.map((t) => t.totalMs)), '**1.2 s / 1.23 s / 1.1 s**'],
    ],
  ),
);
console.log(`\nReproduce: npm run build && node dist/bench/sae-setup.js --agreements ${agreements} --warmup ${warmup}`);
initiator.close();
await kme.close();
children.forEach((c) => c.kill('SIGTERM'));
rmSync(dir, { recursive: true, force: true });
process.exit(0);
