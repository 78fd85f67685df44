/**
 * The TLS 1.3 PSK tunnel beside stunnel, on the same machine and keys: bulk throughput (MB/s)
 * through a client and a server side, and handshakes per second (new tunnelled connections, each a
 * full PSK handshake), in psk_ke and psk_dhe_ke; and a stream checked byte by byte while keys
 * rotate (bench/tunnel-rotation.ts): qks with a short maximum connection age, stunnel reloading
 * its secrets on SIGHUP. Throughput is taken twice per pair: on fresh processes ("cold": for qks
 * that includes V8 compiling the stream code) and after `--warmup-megabytes` more through the same
 * pair ("warm", a tunnel in service); the CPU time both tunnel processes spent on the warm
 * transfer is read from /proc. Every byte is checked at the target, for both tunnels.
 *
 *   npm run build && node dist/bench/tls-tunnel.js [--megabytes 200] [--warmup-megabytes 800]
 *     [--seconds 3] [--runs 3] [--rotate-megabytes 500] [--rotate-every-ms 100] [--max-age-ms 300]
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes, randomUUID } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
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
    'warmup-megabytes': { type: 'string', default: '800' },
    seconds: { type: 'string', default: '3' },
    runs: { type: 'string', default: '3' },
    'rotate-megabytes': { type: 'string', default: '500' },
    'rotate-every-ms': { type: 'string', default: '100' },
    'max-age-ms': { type: 'string', default: '300' },
  },
});
const megabytes = Number(values.megabytes);
const warmupMegabytes = Number(values['warmup-megabytes']);
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
/** The bulk stream is this chunk repeated; the target compares every byte with it. */
const CHUNK = randomBytes(64 * 1024);
const intact = (d: Buffer, at: number) => {
  for (let i = 0; i < d.length;) {
    const p = (at + i) % CHUNK.length;
    const n = Math.min(d.length - i, CHUNK.length - p);
    if (!d.subarray(i, i + n).equals(CHUNK.subarray(p, p + n))) return false;
    i += n;
  }
  return true;
};
// The target: checks bulk data and says `done` once all of it arrived intact, or answers a ping.
const target = createServer((s) => {
  let n = 0;
  let ok = true;
  s.on('data', (d: Buffer) => {
    if (n === 0 && d.length === 4 && d.toString() === 'ping') return void s.end('pong');
    ok &&= intact(d, n);
    n += d.length;
    if (n >= TOTAL) s.end(ok && n === TOTAL ? 'done' : 'corrupt');
  });
  s.on('error', () => undefined);
});
await new Promise<void>((r) => target.listen(0, '127.0.0.1', r));
const targetAt = local((target.address() as AddressInfo).port);

interface Pair {
  readonly port: number;
  /** The tunnel's processes (client and server side). */
  readonly pids: readonly number[];
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
    return {
      port: clientPort!,
      pids: [client.pid!, server.pid!],
      rotate,
      stop: async () => void (await Promise.all([stop(client), stop(server)])),
    };
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
  await client.start();
  await server.start();
  const pids = [client.pid!, server.pid!];
  for (const p of [serverPort!, clientPort!])
    while (!(await portAnswers(p))) await new Promise((r) => setTimeout(r, 50));
  const rotate = async () => {
    const next = { keyId: randomUUID(), key: randomBytes(32) };
    serverKeys.add({ ...next, key: Buffer.from(next.key) });
    await pause(20);
    clientKeys.add(next);
  };
  return { port: clientPort!, pids, rotate, stop: async () => (await client.stop(), await server.stop()) };
}

/** CPU seconds (user + system, all threads) a process has used so far. */
const cpuSeconds = (pid: number) => {
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
  return (Number(fields[11]) + Number(fields[12])) / 100; // clock ticks: USER_HZ is 100 on Linux
};
const cpuOf = (pids: readonly number[]) => pids.reduce((sum, pid) => sum + cpuSeconds(pid), 0);

/** Sends `megabytes` through the tunnel; MB/s until the target has checked every byte. */
function throughput(port: number): Promise<number> {
  const chunk = CHUNK;
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
      const answer = d.toString();
      if (answer.includes('done')) resolve(megabytes / ((performance.now() - t0) / 1000));
      else if (answer.includes('corrupt')) reject(new Error('the target received other bytes than were sent'));
      s.destroy();
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
const costRows: string[] = [];
const rotationRows: string[] = [];
const spread: string[] = [];
for (const mode of ['psk_ke', 'psk_dhe_ke'] as PskMode[]) {
  type Figures = { cold: number[]; mbps: number[]; cpuPerGb: number[]; hps: number[]; rot: RotationFigures[] };
  const figures = (): Figures => ({ cold: [], mbps: [], cpuPerGb: [], hps: [], rot: [] });
  const result: Record<string, Figures> = { qks: figures(), stunnel: figures() };
  for (let i = 0; i < runs; i++) {
    // Alternate the order so neither side always runs on a warmer machine.
    for (const kind of (i % 2 ? ['stunnel', 'qks'] : ['qks', 'stunnel']) as Array<'qks' | 'stunnel'>) {
      const p = await pair(kind, mode);
      result[kind]!.cold.push(await throughput(p.port));
      for (let mb = 0; mb < warmupMegabytes; mb += megabytes) await throughput(p.port);
      const cpu0 = cpuOf(p.pids);
      result[kind]!.mbps.push(await throughput(p.port));
      result[kind]!.cpuPerGb.push(((cpuOf(p.pids) - cpu0) * 1024) / megabytes);
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
  const cells = (f: (x: Figures) => number[], digits = 0) =>
    `${median(f(q)).toFixed(digits)} | ${median(f(st)).toFixed(digits)} | ${pct(median(f(q)), median(f(st)))}`;
  rows.push(`| ${mode} | ${cells((x) => x.mbps)} | ${cells((x) => x.cold)} |`);
  costRows.push(`| ${mode} | ${cells((x) => x.cpuPerGb, 2)} | ${cells((x) => x.hps)} |`);
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
  `TLS 1.3 PSK tunnel vs stunnel, ${megabytes} MB per throughput run (warm: after ${warmupMegabytes} MB more ` +
    `through the same pair; cold: the first ${megabytes} MB on fresh processes), median of ${runs} runs:\n`,
);
console.log('| mode | qks warm MB/s | stunnel warm MB/s | ratio | qks cold MB/s | stunnel cold MB/s | ratio |');
console.log('| --- | --- | --- | --- | --- | --- | --- |');
console.log(rows.join('\n'));
console.log(`\nWarm throughput ratio of each run (qks/stunnel): ${spread.join('; ')}`);
console.log(
  `\nCPU seconds both tunnel processes spent per GB of the warm transfer; handshakes/s over ${seconds} s (8 at a time):\n`,
);
console.log('| mode | qks CPU s/GB | stunnel CPU s/GB | ratio | qks handshakes/s | stunnel handshakes/s | ratio |');
console.log('| --- | --- | --- | --- | --- | --- | --- |');
console.log(costRows.join('\n'));
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
  `\nReproduce: npm run build && node dist/bench/tls-tunnel.js --megabytes ${megabytes}` +
    ` --warmup-megabytes ${warmupMegabytes} --seconds ${seconds} --runs ${runs}` +
    ` --rotate-megabytes ${rotateMegabytes} --rotate-every-ms ${rotateEveryMs} --max-age-ms ${maxAgeMs}`,
);
target.close();
checked.close();
rmSync(dir, { recursive: true, force: true });
process.exit(0);
