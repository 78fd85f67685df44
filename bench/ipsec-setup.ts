/**
 * Time for an IPsec tunnel (IKE SA and Child SA) to come up with a PPK from QKS, beside the same
 * tunnel with a static PPK read from a file, in the same run: two strongSwan gateways in network
 * namespaces (user-space ESP), the demo's two KMEs as a `qks demo` process.
 *
 * QKS: the initiator's SAE agrees a fresh key with the responder's (enc_keys, key IDs to the
 * peer, dec_keys, acknowledgement), both install it over VICI, and the initiator brings up a new
 * IKE SA with it. Static: the initiator reads its PPK from a file (loaded at the responder
 * beforehand, as static configuration is) and brings up a new IKE SA. Each try starts with no SA
 * up; closing the old ones is not timed. Needs root (network namespaces).
 *
 *   npm run build && node dist/bench/ipsec-setup.js [--tries 60] [--warmup 5]
 */
import { randomBytes, randomUUID } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import type { DemoManifest } from '../src/cli/demo.js';
import { IpsecAgent } from '../src/integrations/ipsec/ipsec-agent.js';
import { IpsecError, type IpsecConnection, type Ppk } from '../src/integrations/ipsec/gateway.js';
import { StrongSwanGateway } from '../src/integrations/ipsec/strongswan.js';
import { Initiator } from '../src/sae/agreement/initiator.js';
import { Responder } from '../src/sae/agreement/responder.js';
import { KeyRing } from '../src/sae/key-ring.js';
import { KmeClient } from '../src/sae/kme-client.js';
import { freePorts } from '../src/cli/ports.js';
import { startDemo } from '../test/helpers/ipsec-agents.js';
import { IpsecLab, peerMissing, type Gateway } from '../test/helpers/ipsec-lab.js';
import { summarise, table } from './stats.js';

const { values } = parseArgs({
  options: { tries: { type: 'string', default: '60' }, warmup: { type: 'string', default: '5' } },
});
const tries = Number(values.tries);
const warmup = Number(values.warmup);
const missing = peerMissing('strongswan');
if (missing) throw new Error(`ipsec-setup: ${missing}`);

const lab = new IpsecLab('strongswan');
lab.network();
await lab.startDaemon(lab.a);
await lab.startDaemon(lab.b);
const demo = await startDemo();
const manifest = JSON.parse(readFileSync(demo.manifest, 'utf8')) as DemoManifest;
const ikeSecret = readFileSync(lab.ikeSecretFile, 'utf8').trim();
const connection = (gw: Gateway): IpsecConnection => ({
  name: 'qkd',
  localAddr: gw.outer,
  remoteAddr: lab.peer(gw).outer,
  localId: gw.id,
  remoteId: lab.peer(gw).id,
  ikeSecret,
  localTs: `${gw.inner}/32`,
  remoteTs: `${lab.peer(gw).inner}/32`,
  ppkRequired: true,
});
const sae = (id: string) => {
  const s = manifest.saes.find((x) => x.id === id)!;
  const url = manifest.kmes.find((k) => k.id === s.kme)!.url;
  const tls = { ca: readFileSync(manifest.ca), cert: readFileSync(s.cert), key: readFileSync(s.key) };
  return { kme: new KmeClient({ url, ca: manifest.ca, cert: s.cert, key: s.key }), tls };
};

// The responder gateway: its agent installs every key its SAE receives.
const [agreePort] = await freePorts(1);
const b = sae('sae-b1');
const ringB = new KeyRing();
const responder = new Responder({
  saeId: 'sae-b1',
  peers: ['sae-a1'],
  kme: b.kme,
  tls: b.tls,
  host: '127.0.0.1',
  port: agreePort!,
});
responder.on('keys', (k) => k.keys.forEach((key) => ringB.add(key)));
await responder.listen();
const agentB = new IpsecAgent({
  role: 'responder',
  gateway: new StrongSwanGateway({ vici: lab.vici(lab.b), connection: connection(lab.b) }),
  keys: ringB,
});
await agentB.start();

// The initiator gateway, driven step by step so that each step can be timed.
const a = sae('sae-a1');
const initiator = new Initiator({
  saeId: 'sae-a1',
  peerSaeId: 'sae-b1',
  peer: { host: '127.0.0.1', port: agreePort! },
  kme: a.kme,
  tls: a.tls,
});
const gwA = new StrongSwanGateway({ vici: lab.vici(lab.a), connection: connection(lab.a) });
await gwA.open();

/** Brings up an IKE SA, retrying while the peer's agent is still installing the PPK (as the agent does). */
const establish = async () => {
  for (let attempt = 0; ; attempt++) {
    try {
      return await gwA.establish();
    } catch (err) {
      if (!(err instanceof IpsecError && err.code === 'auth_failed') || attempt > 20) throw err;
      await new Promise((r) => setTimeout(r, 5));
    }
  }
};

// The static PPK: written to a file once; the responder holds it from the start.
const staticFile = join(lab.root, 'static-ppk.hex');
const staticPpk: Ppk = { id: `static-${randomUUID()}`, key: randomBytes(32) };
writeFileSync(staticFile, staticPpk.key.toString('hex') + '\n', { mode: 0o600 });

/** Each try starts with no SA up (charon would refuse a second, identical Child SA). */
const closeAll = async () => {
  for (const sa of await gwA.sas()) await gwA.terminate(sa.ikeId);
};
const sample = {
  qks: { key: [] as number[], tunnel: [] as number[] },
  file: { key: [] as number[], tunnel: [] as number[] },
};

async function tryQks(record: boolean) {
  await closeAll();
  const t0 = performance.now();
  const agreed = await initiator.agree(1);
  const key = agreed.keys[0]!;
  const tKey = performance.now();
  await gwA.setPpks([{ id: key.keyId, key: key.key }]);
  await establish();
  const t1 = performance.now();
  if (!record) return;
  sample.qks.key.push(tKey - t0);
  sample.qks.tunnel.push(t1 - t0);
}

async function tryFile(record: boolean) {
  // Static configuration at the responder: its connection names the static PPK (not timed; a
  // strongSwan responder accepts only the PPK_ID its connection names).
  ringB.add({ keyId: staticPpk.id, key: Buffer.from(staticPpk.key) });
  await agentB.settled();
  await closeAll();
  const t0 = performance.now();
  const ppk: Ppk = { id: staticPpk.id, key: Buffer.from(readFileSync(staticFile, 'utf8').trim(), 'hex') };
  const tKey = performance.now();
  await gwA.setPpks([ppk]);
  await establish();
  const t1 = performance.now();
  if (!record) return;
  sample.file.key.push(tKey - t0);
  sample.file.tunnel.push(t1 - t0);
}

// The demo's QKD link needs a few frames before the first keys: wait until there are enough.
for (const deadline = Date.now() + 120_000; ;) {
  if ((await a.kme.status('sae-b1')).stored_key_count >= warmup + tries + 5) break;
  if (Date.now() > deadline) throw new Error('the demo link made too few keys in 2 minutes');
  await new Promise((r) => setTimeout(r, 500));
}
for (let i = 0; i < warmup; i++) {
  await tryQks(false);
  await tryFile(false);
}
// Alternating, so that both see the same machine.
for (let i = 0; i < tries; i++) {
  const order = i % 2 === 0 ? [tryQks, tryFile] : [tryFile, tryQks];
  for (const run of order) await run(true);
}
const ping = await lab.pingResult(lab.a, { count: 3, intervalS: 0.1 });
if (ping.received !== 3) throw new Error('the last tunnel does not carry traffic');

const med = (xs: number[]) => Number(summarise(xs)[0]);
console.log(`IPsec tunnel set-up with strongSwan, ${tries} tries each, medians (p99) in ms:\n`);
console.log(
  table(
    ['PPK from', 'key step', 'key step p99', 'tunnel up', 'tunnel up p99'],
    [
      ['QKS (agreement through both KMEs)', ...summarise(sample.qks.key), ...summarise(sample.qks.tunnel)],
      ['a static file', ...summarise(sample.file.key), ...summarise(sample.file.tunnel)],
    ],
  ),
);
console.log(
  `\nQKS adds ${(med(sample.qks.tunnel) - med(sample.file.tunnel)).toFixed(2)} ms to a tunnel's set-up ` +
    `(ratio ${(med(sample.qks.tunnel) / med(sample.file.tunnel)).toFixed(2)}).`,
);
console.log(`\nReproduce: npm run build && node dist/bench/ipsec-setup.js --tries ${tries} --warmup ${warmup}`);

await initiator.close();
await agentB.stop();
await responder.close();
await gwA.close();
await Promise.all([a.kme.close(), b.kme.close()]);
ringB.clear();
await demo.stop();
await lab.stop();
process.exit(0);
