/**
 * The TLS 1.3 PSK tunnel beside stunnel, on the same machine and keys: bulk throughput (MB/s)
 * through a client and a server side, and handshakes per second (new tunnelled connections, each a
 * full PSK handshake), in psk_ke and psk_dhe_ke; and a stream checked byte by byte while keys
 * rotate (bench/tunnel-rotation.ts): qks with a short maximum connection age, stunnel reloading
 * its secrets on SIGHUP.
 *
 *   npm run build && node dist/bench/tls-tunnel.js [--megabytes 200] [--seconds 3] [--runs 3]
 *     [--rotate-megabytes 500] [--rotate-every-ms 100] [--max-age-ms 300]
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
import { streamTarget, streamWhileRotating, type RotationFigures } from './tunnel-rotation.js';

const SIDE = fileURLToPath(new URL('./tunnel-side.js', import.meta.url));

const { values } = parseArgs({
  options: {
    megabytes: { type: 'string', default: '200' },
    seconds: { type: 'string', default: '3' },
    runs: { type: 'string', default: '3' },
    'rotate-megabytes': { type: 'string', default: '500' },
    'rotate-every-ms': { type: 'string', default: '100' },
    'max-age-ms': { type: 'string', default: '300' },
  },
});
const megabytes = Number(values.megabytes);
const seconds = Number(values.seconds);
const runs = Number(values.runs);
const rotateMegabytes = Number(values['rotate-megabytes']);
const rotateEveryMs = Number(values['rotate-every-ms']);
const maxAgeMs = Number(values['max-age-ms']);
const dir = mkdtempSync(join(tmpdir(), 'qks-bench-tls-'));
const key = { keyId: randomUUID(), key: randomBytes(32) };
const ring = () => {
  const r = new KeyRing();
  r.add({ keyId: key.keyId, key: Buffer.from(key.key) });
  return r;
};
const pause = (ms: number) => new Promise((r) => setTimeout(r, ms));
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

interface Pair {
  readonly port: number;
  /** A new key on both sides, the server's first (as an agreement delivers it). */
  readonly rotate: () => Promise<void>;
  readonly stop: () => Promise<void>;
}

/** Starts a client side and a server side of one kind; returns the client's plaintext port. */
async function pair(kind: 'qks' | 'stunnel', mode: PskMode, to = targetAt.port, maxAge = 0): Promise<Pair> {
  const [serverPort, clientPort] = await freePorts(2);
  if (kind === 'qks') {
    // Each side its own process, as `qks tunnel` runs in service and as stunnel runs here.
    const side = (role: string, listen: number, connect: number) => {
      const child = spawn(process.execPath, [SIDE, role, mode, String(listen), String(connect)], {
        env: {
          ...process.env,
          QKS_BENCH_KEY: `${key.keyId}:${key.key.toString('hex')}`,
          QKS_BENCH_MAX_AGE_MS: String(maxAge),
        },
        stdio: ['pipe', 'pipe', 'inherit'],
      });
      child.stdin!.on('error', () => undefined); // a side that already exited takes no more keys
      return new Promise<ChildProcess>((resolve) => child.stdout!.once('data', () => resolve(child)));
    };
    const server = await side('server', serverPort!, to);
    const client = await side('client', clientPort!, serverPort!);
    const rotate = async () => {
      const line = `${randomUUID()}:${randomBytes(32).toString('hex')}\n`;
      server.stdin!.write(line);
      await pause(20);
      client.stdin!.write(line);
    };
    const stop = (c: ChildProcess) => new Promise((r) => (c.once('exit', r), c.kill('SIGTERM')));
    return { port: clientPort!, rotate, stop: async () => void (await Promise.all([stop(client), stop(server)])) };
  }
  const serverKeys = ring();
  const clientKeys = ring();
  const server = new StunnelManager({
    role: 'server',
    dir: join(dir, `s-${mode}-${serverPort}`),
    accept: local(serverPort),
    connect: local(to),
    keys: serverKeys,
    mode,
    logLevel: 'notice', // measured as an operator would run it, without per-connection logging
  });
  const client = new StunnelManager({
    role: 'client',
    dir: join(dir, `c-${mode}-${clientPort}`),
    accept: local(clientPort),
    connect: local(serverPort),
    keys: clientKeys,
    mode,
    logLevel: 'notice',
  });
  server.start();
  client.start();
  for (const p of [serverPort!, clientPort!])
    while (!(await portAnswers(p))) await new Promise((r) => setTimeout(r, 50));
  const rotate = async () => {
    const next = { keyId: randomUUID(), key: randomBytes(32) };
    serverKeys.add({ ...next, key: Buffer.from(next.key) });
    await pause(20);
    clientKeys.add(next);
  };
  return { port: clientPort!, rotate, stop: async () => (await client.stop(), await server.stop()) };
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
const pct = (a: number, b: number) => `${((a / b) * 100).toFixed(0)}%`;
const checked = await streamTarget();
const rows: string[] = [];
const rotationRows: string[] = [];
const spread: string[] = [];
for (const mode of ['psk_ke', 'psk_dhe_ke'] as PskMode[]) {
  const result: Record<string, { mbps: number[]; hps: number[]; rot: RotationFigures[] }> = {
    qks: { mbps: [], hps: [], rot: [] },
    stunnel: { mbps: [], hps: [], rot: [] },
  };
  for (let i = 0; i < runs; i++) {
    // Alternate the order so neither side always runs on a warmer machine.
    for (const kind of (i % 2 ? ['stunnel', 'qks'] : ['qks', 'stunnel']) as Array<'qks' | 'stunnel'>) {
      const p = await pair(kind, mode);
      result[kind]!.mbps.push(await throughput(p.port));
      result[kind]!.hps.push(await handshakes(p.port));
      await p.stop();
      // stunnel keeps open connections on their key; qks ends them at the maximum age.
      const r = await pair(kind, mode, checked.port, kind === 'qks' ? maxAgeMs : 0);
      result[kind]!.rot.push(await streamWhileRotating(checked, r.port, rotateMegabytes, rotateEveryMs, r.rotate));
      await r.stop();
    }
  }
  const q = result['qks']!;
  const st = result['stunnel']!;
  rows.push(
    `| ${mode} | ${median(q.mbps).toFixed(0)} | ${median(st.mbps).toFixed(0)} | ${pct(median(q.mbps), median(st.mbps))} | ` +
      `${median(q.hps).toFixed(0)} | ${median(st.hps).toFixed(0)} | ${pct(median(q.hps), median(st.hps))} |`,
  );
  spread.push(`${mode}: ${q.mbps.map((m, i) => pct(m, st.mbps[i]!)).join(', ')}`);
  for (const [kind, r] of [
    ['qks', q.rot],
    ['stunnel', st.rot],
  ] as const) {
    const sum = (f: (x: RotationFigures) => number) => r.reduce((a, x) => a + f(x), 0);
    rotationRows.push(
      `| ${mode} | ${kind} | ${median(r.map((x) => x.mbps)).toFixed(0)} | ${sum((x) => x.rotations)} | ` +
        `${sum((x) => x.connections - 1)} | ${sum((x) => x.lostBytes)} | ${sum((x) => x.mismatchedBytes)} | ` +
        `${(sum((x) => x.resentBytes) / 1024 / 1024).toFixed(1)} | ${Math.max(...r.map((x) => x.maxGapMs)).toFixed(0)} |`,
    );
  }
}
console.log(
  `TLS 1.3 PSK tunnel vs stunnel, ${megabytes} MB per throughput run, ${seconds} s of handshakes, median of ${runs} runs:\n`,
);
console.log('| mode | qks MB/s | stunnel MB/s | ratio | qks handshakes/s | stunnel handshakes/s | ratio |');
console.log('| --- | --- | --- | --- | --- | --- | --- |');
console.log(rows.join('\n'));
console.log(`\nThroughput ratio of each run (qks/stunnel): ${spread.join('; ')}`);
console.log(
  `\nKey rotation under load: ${rotateMegabytes} MB checked byte by byte, a new key every ${rotateEveryMs} ms, ` +
    `qks connections ended at ${maxAgeMs} ms; sums over ${runs} runs (MB/s: median):\n`,
);
console.log(
  '| mode | tunnel | MB/s | rotations | reconnects | bytes lost | bytes wrong | MB resent | longest gap ms |',
);
console.log('| --- | --- | --- | --- | --- | --- | --- | --- | --- |');
console.log(rotationRows.join('\n'));
console.log(
  `\nReproduce: npm run build && node dist/bench/tls-tunnel.js --megabytes ${megabytes} --seconds ${seconds} --runs ${runs}` +
    ` --rotate-megabytes ${rotateMegabytes} --rotate-every-ms ${rotateEveryMs} --max-age-ms ${maxAgeMs}`,
);
target.close();
checked.close();
rmSync(dir, { recursive: true, force: true });
process.exit(0);
