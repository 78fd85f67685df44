/**
 * One end of a QKD link in its own process, for bench/qkd-link.ts: the follower serves the peer
 * stream on a mutual-TLS server like a KME's channel; the leader drives frames through the KME's
 * own stream client. Prints a JSON line of totals and stage times on SIGTERM.
 *
 *   node dist/bench/qkd-end.js --role leader|follower --deployment DIR --port N --settings JSON
 *        [--concurrency 3] [--record-ahead K]   (leader: K frames of detections made before 'ready')
 */
import { createServer } from 'node:https';
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { pino } from 'pino';
import { loadConfig } from '../src/kme/config.js';
import { PEER_TLS_OPTIONS } from '../src/kme/http/peer-api.js';
import { PeerStreams } from '../src/kme/peer-stream/client.js';
import { attachPeerStream } from '../src/kme/peer-stream/server.js';
import { qkdLinkChannel, qkdLinkHandlers } from '../src/kme/qkd-link-channel.js';
import { QkdLink } from '../src/sources/qkd-link.js';
import type { QkdSettings } from '../src/sources/qkd/settings.js';

const { values: opt } = parseArgs({
  options: {
    role: { type: 'string' },
    deployment: { type: 'string' },
    port: { type: 'string' },
    settings: { type: 'string' },
    concurrency: { type: 'string', default: '3' },
    'record-ahead': { type: 'string', default: '0' },
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
  link = new QkdLink({ ...base, role: 'follower', allowReplay: true });
  const server = createServer({ ...tls, ...PEER_TLS_OPTIONS });
  const streams = attachPeerStream(server, {
    peers: new Set(['kme-a']),
    handlers: qkdLinkHandlers({ ends: new Map([['link-a-b', link]]), leaderOf: () => 'kme-a' }),
    log,
  });
  await new Promise<void>((resolve) => server.listen(Number(opt.port), '127.0.0.1', resolve));
  close = async () => {
    streams.close();
    await new Promise((resolve) => server.close(resolve));
  };
} else {
  const streams = new PeerStreams({ peers: [{ kmeId: 'kme-b', url: `https://127.0.0.1:${opt.port}` }], tls, log });
  link = new QkdLink({
    ...base,
    role: 'leader',
    concurrency: Number(opt.concurrency),
    channel: qkdLinkChannel(streams, 'kme-b'),
  });
  const ahead = Number(opt['record-ahead']);
  if (ahead > 0) await link.recordAhead(ahead);
  close = async () => streams.close();
}
// Times from here on, and again from SIGUSR2 (the bench sends it once the leader has recorded
// its frames ahead): that recording is not part of the run.
let cpuAtStart = process.cpuUsage();
let started = performance.now();
const restart = () => {
  for (const stage of Object.keys(link.clock.ms)) link.clock.ms[stage as keyof typeof link.clock.ms] = 0;
  cpuAtStart = process.cpuUsage();
  started = performance.now();
};
restart();
process.on('SIGUSR2', restart);
link.start(null, sink);
process.stdout.write('ready\n');
process.on('SIGTERM', () => {
  void (async () => {
    const seconds = (performance.now() - started) / 1000;
    await link.stop();
    await close();
    const usage = process.cpuUsage(cpuAtStart);
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
