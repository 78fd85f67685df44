/**
 * Setup time of an SAE pair, broken down as in the thesis (chapter 10): the initiator's get key
 * (enc_keys), send the key IDs and receive the acknowledgement, and the responder's get key with
 * key IDs (dec_keys), on the demo network: two KMEs on loopback joined by a simulated link, each a
 * `qks kme` process; the responder in `qks sae agree --role responder`; the initiator runs here.
 *
 * With `--auth token` the KMEs accept only OAuth2 tokens from a real OIDC provider (oidc-provider,
 * the tests' stand-in for Keycloak) and both SAEs fetch theirs by client credentials, once.
 *
 *   npm run build && node dist/bench/sae-setup.js [--agreements 1000] [--warmup 50] [--auth certificate|token]
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import type { DemoManifest } from '../src/cli/demo.js';
import { freePorts, portAnswers } from '../src/cli/ports.js';
import { Initiator } from '../src/sae/agreement/initiator.js';
import { KmeClient } from '../src/sae/kme-client.js';
import { summarise, table } from './stats.js';
import { writeFileSync } from 'node:fs';
import { initDeployment } from '../src/cli/init.js';
import { TokenClient } from '../src/sae/token-client.js';
import { startIssuer, type RunningIssuer } from '../test/helpers/oidc-issuer.js';

const BIN = fileURLToPath(new URL('../../bin/qks.js', import.meta.url));
const { values } = parseArgs({
  options: {
    agreements: { type: 'string', default: '1000' },
    warmup: { type: 'string', default: '50' },
    auth: { type: 'string', default: 'certificate' },
  },
});
const agreements = Number(values.agreements);
const tokens = values.auth === 'token';
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
const AUDIENCE = 'urn:qks:kmes';
let issuer: RunningIssuer | undefined;
// The demo network (two KMEs on loopback, a 2 Mbit/s simulated link), each KME its own process.
if (tokens) issuer = await startIssuer({ audience: AUDIENCE, clients: [{ id: 'sae-a1' }, { id: 'sae-b1' }] });
const ports = await freePorts(4);
const d = await initDeployment({
  dir: join(dir, 'site'),
  ports: [
    { sae: ports[0]!, kme: ports[1]! },
    { sae: ports[2]!, kme: ports[3]! },
  ],
  rateBps: 2_000_000,
  ...(issuer ? { auth: { mode: 'token' as const, oidc: { issuer: issuer.issuer, audience: AUDIENCE } } } : {}),
  logLevel: 'warn',
});
for (const c of d.configs) start(['kme', '--config', c.file]);
const manifest: DemoManifest = {
  ca: d.ca,
  kmes: d.configs.map((c) => ({
    id: c.kme,
    url: `https://127.0.0.1:${c.config.sae_api.port}`,
    config: c.file,
    log: '',
  })),
  saes: d.saes.map((s) => ({ ...s })),
};
writeFileSync(manifestFile, JSON.stringify(manifest));
for (const port of ports) while (!(await portAnswers(port))) await new Promise((r) => setTimeout(r, 50));
const sae = (id: string) => manifest.saes.find((s) => s.id === id)!;

const [port] = await freePorts(1);
const tokenArgs = (id: string) => (issuer ? ['--issuer', issuer.issuer, '--client-secret', `secret-${id}`] : []);
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
  ...tokenArgs('sae-b1'),
]);
const responderTimings: Array<{ kmeMs: number; totalMs: number }> = [];
createInterface({ input: responder.stdout! }).on('line', (line) => {
  const event = JSON.parse(line) as { event: string; timings_ms?: { kmeMs: number; totalMs: number } };
  if (event.event === 'agreed' && event.timings_ms) responderTimings.push(event.timings_ms);
});

const me = sae('sae-a1');
const tokenClient = issuer
  ? new TokenClient({ issuer: issuer.issuer, clientId: 'sae-a1', clientSecret: 'secret-sae-a1' })
  : undefined;
let tokenMs = 0;
const kme = new KmeClient({
  url: manifest.kmes[0]!.url,
  ca: manifest.ca,
  cert: me.cert,
  key: me.key,
  ...(tokenClient
    ? {
        authHeaders: async () => {
          const t = performance.now();
          const headers = await tokenClient.headers();
          tokenMs += performance.now() - t;
          return headers;
        },
      }
    : {}),
});
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
tokenMs = 0; // the token fetched while waiting for material counts below, once
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
  `SAE pair setup, ${tokens ? 'OAuth2 tokens (client credentials, one token per lifetime)' : 'client certificates'}, ` +
    `${agreements} agreements after ${warmup} warm-up, one key each (ms):\n`,
);
console.log(
  table(
    ['step', 'median', 'p99', 'thesis (IKE / stunnel / wolfSSL)'],
    [
      ...(tokenClient
        ? [
            [
              'initiator: get token (per agreement, amortised)',
              [(tokenMs / (agreements + warmup)).toFixed(3), '–'] as [string, string],
              '0.03 s / 0.07 s / 0.045 s',
            ] as Array<string | [string, string]>,
          ]
        : []),
      ['initiator: get key (enc_keys)', summarise(steps.getKey), '1.2 s / 2.7 s / 2.5 s'],
      ['initiator: send key IDs, receive ACK', summarise(steps.exchange), '0.84 s / 1.26 s / 1.1 s'],
      ['**initiator setup time**', summarise(steps.initiator), '**3.9 s / 4.0 s / 3.7 s**'],
      ['responder: get key with key IDs (dec_keys)', summarise(resp.map((t) => t.kmeMs)), '1.2 s / 1.2 s / 1.1 s'],
      ['**responder setup time**', summarise(resp.map((t) => t.totalMs)), '**1.2 s / 1.23 s / 1.1 s**'],
    ],
  ),
);
if (tokenClient) {
  const perAgreement = (tokenMs / (agreements + warmup)).toFixed(3);
  console.log(
    `\nTokens fetched by the initiator: ${tokenClient.fetched}; token handling in all: ${tokenMs.toFixed(1)} ms (${perAgreement} ms per agreement).`,
  );
}
console.log(
  `\nReproduce: npm run build && node dist/bench/sae-setup.js --agreements ${agreements} --warmup ${warmup} --auth ${values.auth}`,
);
await issuer?.stop();
await tokenClient?.close();
initiator.close();
await kme.close();
children.forEach((c) => c.kill('SIGTERM'));
rmSync(dir, { recursive: true, force: true });
process.exit(0);
