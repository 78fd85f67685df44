/**
 * One end of a QKD link in its own process, for bench/qkd-link.ts: the follower serves the
 * post-processing routes on a mutual-TLS server like a KME's channel; the leader drives frames
 * through the KME's own peer client. Prints a JSON line of totals and stage times on SIGTERM.
 *
 *   node dist/bench/qkd-end.js --role leader|follower --deployment DIR --port N --settings JSON
 */
import Fastify from 'fastify';
import { readFileSync } from 'node:fs';
import type { TLSSocket } from 'node:tls';
import { parseArgs } from 'node:util';
import { pino } from 'pino';
import { peerIdentity } from '../src/auth/tls-identity.js';
import { loadConfig } from '../src/kme/config.js';
import { acceptJsonBodies } from '../src/kme/http/json-body.js';
import { PEER_TLS_OPTIONS } from '../src/kme/http/peer-api.js';
import { registerQkdLinkRoutes } from '../src/kme/http/qkd-link-api.js';
import { sendEtsiError } from '../src/kme/http/etsi-errors.js';
import { PeerClient } from '../src/kme/peer-client.js';
import { QkdLink } from '../src/sources/qkd-link.js';
import { envelopeChannel } from '../src/sources/qkd/envelope.js';
import type { QkdSettings } from '../src/sources/qkd/settings.js';
import type { KeyStore } from '../src/stores/key-store.js';

const { values: opt } = parseArgs({
  options: {
    role: { type: 'string' },
    deployment: { type: 'string' },
    port: { type: 'string' },
    settings: { type: 'string' },
    concurrency: { type: 'string', default: '3' },
  },
});
const role = opt.role === 'leader' ? 'leader' : 'follower';
const kme = role === 'leader' ? 'kme-a' : 'kme-b';
const cfg = loadConfig(`${opt.deployment}/${kme}.json`);
const settings = JSON.parse(opt.settings!) as QkdSettings;
const tls = {
  key: readFileSync(cfg.kme_api.key),
  cert: readFileSync(cfg.kme_api.cert),
  ca: readFileSync(cfg.kme_api.ca),
};
const log = pino({ level: 'warn' });
const seed = Buffer.from(readFileSync(cfg.links[0]!.source.seed_file, 'utf8').trim(), 'hex');
let blocks = 0;
const sink = async (batch: Array<{ bytes: Buffer }>) => {
  blocks += batch.length;
  for (const b of batch) b.bytes.fill(0);
};
const base = { linkId: 'link-a-b', settings, seed, blockBits: 256, historyBlocks: 1 << 20, paced: false, log };

let link: QkdLink;
let close: () => Promise<void>;
if (role === 'follower') {
  link = new QkdLink({ ...base, role: 'follower' });
  const app = Fastify({ https: { ...tls, ...PEER_TLS_OPTIONS }, bodyLimit: 8 << 20 });
  acceptJsonBodies(app);
  app.decorateRequest('peerKme', '');
  app.addHook('onRequest', async (req) => {
    req.peerKme = peerIdentity(req.raw.socket as TLSSocket, 'kme') ?? '';
  });
  app.setErrorHandler((err, _req, reply) => sendEtsiError(reply, err));
  registerQkdLinkRoutes(app, { ends: new Map([['link-a-b', link]]), leaderOf: () => 'kme-a' });
  await app.listen({ host: '127.0.0.1', port: Number(opt.port) });
  close = () => app.close();
} else {
  const peers = new PeerClient({
    peers: [{ kmeId: 'kme-b', url: `https://127.0.0.1:${opt.port}` }],
    tls,
    store: undefined as unknown as KeyStore, // the outbox is not started
    log,
    timeoutMs: 60_000,
  });
  link = new QkdLink({
    ...base,
    role: 'leader',
    concurrency: Number(opt.concurrency),
    channel: envelopeChannel((op, body) => peers.exchange('kme-b', `/kme/v1/qkd/${op}`, body)),
  });
  close = () => peers.close();
}
const started = performance.now();
link.start(null, sink);
process.stdout.write('ready\n');
process.on('SIGTERM', () => {
  void (async () => {
    const seconds = (performance.now() - started) / 1000;
    await link.stop();
    await close();
    const usage = process.cpuUsage();
    process.stdout.write(
      JSON.stringify({
        role,
        seconds,
        totals: link.stats.totals,
        frames: link.stats.framesSeen,
        stats: link.info().stats,
        blocks,
        stageMs: link.clock.ms,
        cpuSeconds: (usage.user + usage.system) / 1e6,
      }) + '\n',
    );
    process.exit(0);
  })();
});
