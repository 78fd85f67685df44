/**
 * The TLS 1.3 PSK tunnel beside stunnel, on the same machine and keys: bulk throughput (MB/s)
 * through a client and a server side, and handshakes per second (new tunnelled connections, each a
 * full PSK handshake), in psk_ke and psk_dhe_ke.
 *
 *   npm run build && node dist/bench/tls-tunnel.js [--megabytes 200] [--seconds 3] [--runs 3]
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes, randomUUID } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import { mkdtempSync, rmSync } from 'node:fs';
import { connect, createServer, type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { freePorts, portAnswers } from '../src/cli/ports.js';
import { StunnelManager } from '../src/integrations/stunnel/stunnel-manager.js';
import type { PskMode } from '../src/integrations/tls-psk/psk-tls.js';
import { KeyRing } from '../src/sae/key-ring.js';

const SIDE = fileURLToPath(new URL('./tunnel-side.js', import.meta.url));

const { values } = parseArgs({
  options: {
    megabytes: { type: 'string', default: '200' },
    seconds: { type: 'string', default: '3' },
    runs: { type: 'string', default: '3' },
  },
});
const megabytes = Number(values.megabytes);
const seconds = Number(values.seconds);
const runs = Number(values.runs);
const dir = mkdtempSync(join(tmpdir(), 'qks-bench-tls-'));
const key = { keyId: randomUUID(), key: randomBytes(32) };
const ring = () => {
  const r = new KeyRing();
  r.add({ keyId: key.keyId, key: Buffer.from(key.key) });
  return r;
};
const local = (port = 0) => ({ host: '127.0.0.1', port });

const TOTAL = megabytes * 1024 * 1024;
// The target: swallows bulk data and says `done` once all of it arrived, or answers a ping.
const target = createServer((s) => {
  let n = 0;
  s.on('data', (d: Buffer) => {
    n += d.length;
    if (d.length === 4 && d.toString() === 'ping') s.end('pong');
    else if (n >= TOTAL) s.end('done');
  });
  s.on('error', () => undefined);
});
await new Promise<void>((r) => target.listen(0, '127.0.0.1', r));
const targetAt = local((target.address() as AddressInfo).port);

/** Starts a client side and a server side of one kind; returns the client's plaintext port. */
async function pair(kind: 'qks' | 'stunnel', mode: PskMode): Promise<{ port: number; stop: () => Promise<void> }> {
  const [serverPort, clientPort] = await freePorts(2);
  if (kind === 'qks') {
    // Each side its own process, as `qks tunnel` runs in service and as stunnel runs here.
    const side = (role: string, listen: number, connect: number) => {
      const child = spawn(process.execPath, [SIDE, role, mode, String(listen), String(connect)], {
        env: { ...process.env, QKS_BENCH_KEY: `${key.keyId}:${key.key.toString('hex')}` },
        stdio: ['ignore', 'pipe', 'inherit'],
      });
      return new Promise<ChildProcess>((resolve) => child.stdout!.once('data', () => resolve(child)));
    };
    const server = await side('server', serverPort!, targetAt.port);
    const client = await side('client', clientPort!, serverPort!);
    const stop = (c: ChildProcess) => new Promise((r) => (c.once('exit', r), c.kill('SIGTERM')));
    return { port: clientPort!, stop: async () => void (await Promise.all([stop(client), stop(server)])) };
  }
  const server = new StunnelManager({
    role: 'server',
    dir: join(dir, `s-${mode}-${serverPort}`),
    accept: local(serverPort),
    connect: targetAt,
    keys: ring(),
    mode,
    logLevel: 'notice', // measured as an operator would run it, without per-connection logging
  });
  const client = new StunnelManager({
    role: 'client',
    dir: join(dir, `c-${mode}-${clientPort}`),
    accept: local(clientPort),
    connect: local(serverPort),
    keys: ring(),
    mode,
    logLevel: 'notice',
  });
  server.start();
  client.start();
  for (const p of [serverPort!, clientPort!])
    while (!(await portAnswers(p))) await new Promise((r) => setTimeout(r, 50));
  return { port: clientPort!, stop: async () => (await client.stop(), await server.stop()) };
}

/** Sends `megabytes` through the tunnel; MB/s until the target has counted every byte. */
function throughput(port: number): Promise<number> {
  const chunk = randomBytes(64 * 1024);
  const total = TOTAL;
  return new Promise((resolve, reject) => {
    const t0 = performance.now();
    const s = connect(port, '127.0.0.1', () => {
      let sent = 0;
      const pump = () => {
        while (sent < total) {
          sent += chunk.length;
          if (!s.write(chunk)) return void s.once('drain', pump);
        }
      };
      pump();
    });
    s.on('data', (d: Buffer) => {
      if (d.toString().includes('done')) {
        resolve(megabytes / ((performance.now() - t0) / 1000));
        s.destroy();
      }
    });
    s.on('close', () => reject(new Error('closed before all data arrived')));
    s.on('error', reject);
  });
}

/** New connections per second, each a full handshake and one round trip, 8 at a time. */
async function handshakes(port: number): Promise<number> {
  const end = Date.now() + seconds * 1000;
  let done = 0;
  const one = () =>
    new Promise<void>((resolve) => {
      const s = connect(port, '127.0.0.1', () => s.write('ping'));
      s.on('data', () => s.destroy());
      s.on('close', () => resolve());
      s.on('error', () => resolve());
    });
  await Promise.all(
    Array.from({ length: 8 }, async () => {
      while (Date.now() < end) {
        await one();
        done++;
      }
    }),
  );
  return done / seconds;
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const rows: string[] = [];
for (const mode of ['psk_ke', 'psk_dhe_ke'] as PskMode[]) {
  const result: Record<string, { mbps: number[]; hps: number[] }> = {
    qks: { mbps: [], hps: [] },
    stunnel: { mbps: [], hps: [] },
  };
  for (let i = 0; i < runs; i++) {
    // Alternate the order so neither side always runs on a warmer machine.
    for (const kind of (i % 2 ? ['stunnel', 'qks'] : ['qks', 'stunnel']) as Array<'qks' | 'stunnel'>) {
      const p = await pair(kind, mode);
      result[kind]!.mbps.push(await throughput(p.port));
      result[kind]!.hps.push(await handshakes(p.port));
      await p.stop();
    }
  }
  const q = result['qks']!;
  const st = result['stunnel']!;
  rows.push(
    `| ${mode} | ${median(q.mbps).toFixed(0)} | ${median(st.mbps).toFixed(0)} | ${((median(q.mbps) / median(st.mbps)) * 100).toFixed(0)}% | ` +
      `${median(q.hps).toFixed(0)} | ${median(st.hps).toFixed(0)} | ${((median(q.hps) / median(st.hps)) * 100).toFixed(0)}% |`,
  );
}
console.log(
  `TLS 1.3 PSK tunnel vs stunnel, ${megabytes} MB per throughput run, ${seconds} s of handshakes, median of ${runs} runs:\n`,
);
console.log('| mode | qks MB/s | stunnel MB/s | ratio | qks handshakes/s | stunnel handshakes/s | ratio |');
console.log('| --- | --- | --- | --- | --- | --- | --- |');
console.log(rows.join('\n'));
console.log(
  `\nReproduce: npm run build && node dist/bench/tls-tunnel.js --megabytes ${megabytes} --seconds ${seconds} --runs ${runs}`,
);
target.close();
rmSync(dir, { recursive: true, force: true });
process.exit(0);
