import assert from 'node:assert/strict';
import { createHash, randomBytes, randomUUID } from 'node:crypto';
import { connect, createServer, type AddressInfo, type Server, type Socket } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { TunnelClient, TunnelServer, type Endpoint } from '../../src/integrations/tls-psk/psk-tunnel.js';
import type { PskMode } from '../../src/integrations/tls-psk/psk-tls.js';
import { KeyRing } from '../../src/sae/key-ring.js';
import { startEcho } from '../helpers/echo-server.js';

const local = { host: '127.0.0.1', port: 0 };
const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');

/** Two rings holding the same key, as an agreement leaves them. */
function twinRings(): [KeyRing, KeyRing] {
  const key = { keyId: randomUUID(), key: randomBytes(32) };
  const a = new KeyRing();
  const b = new KeyRing();
  a.add({ keyId: key.keyId, key: Buffer.from(key.key) });
  b.add({ keyId: key.keyId, key: Buffer.from(key.key) });
  return [a, b];
}

async function listening(server: Server): Promise<Endpoint> {
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return { host: '127.0.0.1', port: (server.address() as AddressInfo).port };
}

/** A tunnel client and server over TLS 1.3 PSK in front of `target`. */
async function tunnel(
  target: Endpoint,
  opts: { clientAgeMs?: number; serverAgeMs?: number; graceMs?: number; mode?: PskMode } = {},
) {
  const [clientRing, serverRing] = twinRings();
  const mode = opts.mode ?? 'psk_ke';
  const grace = opts.graceMs !== undefined ? { closeGraceMs: opts.graceMs } : {};
  const server = new TunnelServer({
    listen: local,
    target,
    keys: serverRing,
    mode,
    ...grace,
    ...(opts.serverAgeMs ? { maxConnectionAgeMs: opts.serverAgeMs } : {}),
  });
  const serverAt = await server.listen();
  const client = new TunnelClient({
    listen: local,
    server: serverAt,
    keys: clientRing,
    mode,
    ...grace,
    ...(opts.clientAgeMs ? { maxConnectionAgeMs: opts.clientAgeMs } : {}),
  });
  const at = await client.listen();
  const keyId = clientRing.current()!.keyId;
  const close = async () => {
    await client.close();
    await server.close();
    clientRing.clear();
    serverRing.clear();
  };
  return { client, server, at, serverAt, keyId, close };
}

/** Byte `i` of what an application writes: a pattern the target can check for gaps. */
const patternByte = (i: number) => i % 251;
const pattern = (from: number, length: number) => Buffer.from(Array.from({ length }, (_, i) => patternByte(from + i)));

interface TargetStats {
  /** Blocks sent to the application before the input ended. */
  blocks: number;
  /** Bytes received, and whether they were exactly the pattern from byte 0. */
  received: number;
  intact: boolean;
}

/**
 * A target that streams numbered 1 KiB blocks every few ms until its input ends, then sends a
 * trailer and ends; it checks its input is the application's pattern without a gap.
 */
async function streamingTarget(): Promise<{ server: Server; at: Endpoint; stats: TargetStats[] }> {
  const stats: TargetStats[] = [];
  const server = createServer({ allowHalfOpen: true }, (s) => {
    const mine: TargetStats = { blocks: 0, received: 0, intact: true };
    s.on('data', (d: Buffer) => {
      if (!d.equals(pattern(mine.received, d.length))) mine.intact = false;
      mine.received += d.length;
    });
    const timer = setInterval(() => {
      const b = Buffer.alloc(1024, mine.blocks % 251);
      b.writeUInt32BE(mine.blocks++);
      s.write(b);
    }, 2);
    s.on('end', () => {
      clearInterval(timer);
      stats.push(mine);
      s.end('|END');
    });
    s.on('error', () => clearInterval(timer));
    s.on('close', () => clearInterval(timer));
  });
  return { server, at: await listening(server), stats };
}

/** Everything an application read until its connection closed, and when that was. */
function collect(s: Socket): Promise<{ data: Buffer; closedAt: number; error?: Error }> {
  const chunks: Buffer[] = [];
  let error: Error | undefined;
  s.on('data', (d: Buffer) => chunks.push(d));
  s.on('error', (e) => (error = e));
  return new Promise((resolve) =>
    s.once('close', () => resolve({ data: Buffer.concat(chunks), closedAt: Date.now(), ...(error ? { error } : {}) })),
  );
}

/** The numbered blocks at the start of `data`: how many, and whether they run 0, 1, 2, … */
function blocksIn(data: Buffer): { blocks: number; inOrder: boolean; trailer: string } {
  const blocks = Math.floor(data.length / 1024);
  let inOrder = true;
  for (let i = 0; i < blocks; i++) if (data.readUInt32BE(i * 1024) !== i) inOrder = false;
  return { blocks, inOrder, trailer: data.subarray(blocks * 1024).toString() };
}

describe('tunnelled connections: maximum age, load, back-pressure, shutdown', () => {
  let echo: Server;
  let echoAt: Endpoint;
  before(async () => {
    echo = await startEcho();
    echoAt = { host: '127.0.0.1', port: (echo.address() as AddressInfo).port };
  });
  after(() => new Promise((r) => echo.close(r)));

  for (const side of ['client', 'server'] as const) {
    it(`a connection at its maximum age (${side} side) ends gracefully: nothing lost, on time`, async () => {
      const target = await streamingTarget();
      const ageMs = 400;
      const t = await tunnel(target.at, side === 'client' ? { clientAgeMs: ageMs } : { serverAgeMs: ageMs });
      const aged: string[] = [];
      (side === 'client' ? t.client : t.server).on('aged', (a) => aged.push(a.keyId));
      try {
        const app = connect(t.at.port, '127.0.0.1');
        const started = Date.now();
        const result = collect(app);
        // The application keeps writing its pattern until its connection ends.
        let written = 0;
        const writer = setInterval(() => {
          if (!app.writable) return clearInterval(writer);
          app.write(pattern(written, 4096));
          written += 4096;
        }, 5);
        const { data, closedAt, error } = await result;
        clearInterval(writer);
        assert.equal(error, undefined, 'closed, not reset');
        const elapsed = closedAt - started;
        assert.ok(elapsed >= ageMs, `closed after ${elapsed} ms, not before the age of ${ageMs} ms`);
        assert.ok(elapsed < ageMs + 1500, `closed after ${elapsed} ms, soon after the age`);
        assert.deepEqual(aged, [t.keyId]);
        await new Promise((r) => setTimeout(r, 50));
        const [stats] = target.stats;
        assert.ok(stats, 'the target saw its input end');
        const got = blocksIn(data);
        assert.ok(got.inOrder, 'the blocks arrived in order, without a gap');
        assert.ok(stats.intact, 'the target got the application’s bytes in order, without a gap');
        assert.ok(stats.received > 0 && got.blocks > 0);
        if (side === 'client') {
          // The client stopped taking the application's bytes; all it took arrived, and all the
          // target sent until it saw the end came back, with its last words.
          assert.ok(stats.received <= written);
          assert.equal(got.blocks, stats.blocks, 'every block the target sent reached the application');
          assert.equal(got.trailer, '|END', 'the target’s last words arrived');
        } else {
          // The server stopped taking the target's bytes; the application's end crossed after
          // everything it wrote.
          assert.equal(stats.received, written, 'every byte the application wrote reached the target');
          assert.ok(got.blocks <= stats.blocks && got.trailer === '', 'the target’s later bytes were not taken');
        }
      } finally {
        await t.close();
        await new Promise((r) => target.server.close(r));
      }
    });
  }

  it('without a graceful end in time, an aged connection is destroyed after the grace period', async () => {
    // A target that ignores the end of its input and never ends.
    const held = new Set<Socket>();
    const stubborn = createServer({ allowHalfOpen: true }, (s) => {
      held.add(s);
      s.on('error', () => undefined);
      s.resume();
    });
    const t = await tunnel(await listening(stubborn), { clientAgeMs: 200, graceMs: 300 });
    try {
      const app = connect(t.at.port, '127.0.0.1');
      const started = Date.now();
      const { closedAt } = await collect(app);
      const elapsed = closedAt - started;
      assert.ok(elapsed >= 500 && elapsed < 1500, `destroyed after ${elapsed} ms (age 200 + grace 300)`);
    } finally {
      await t.close();
      for (const s of held) s.destroy();
      await new Promise((r) => stubborn.close(r));
    }
  });

  it('carries 200 concurrent connections, each its own data back', async () => {
    const t = await tunnel(echoAt);
    let connections = 0;
    t.server.on('connection', () => connections++);
    try {
      const results = await Promise.all(
        Array.from({ length: 200 }, async () => {
          const data = randomBytes(8192 + Math.floor(Math.random() * 8192));
          const s = connect(t.at.port, '127.0.0.1', () => s.end(data));
          const { data: back } = await collect(s);
          return sha(back) === sha(data);
        }),
      );
      assert.equal(results.filter(Boolean).length, 200);
      assert.equal(connections, 200);
    } finally {
      await t.close();
    }
  });

  it('bounds concurrent connections: past maxConnections they are refused, and served again later', async () => {
    const [clientRing, serverRing] = twinRings();
    const server = new TunnelServer({ listen: local, target: echoAt, keys: serverRing, mode: 'psk_ke' });
    const client = new TunnelClient({
      listen: local,
      server: await server.listen(),
      keys: clientRing,
      mode: 'psk_ke',
      maxConnections: 5,
    });
    const at = await client.listen();
    const refused: string[] = [];
    client.on('refused', (r) => refused.push(r.reason));
    try {
      const open = async () => {
        const s = connect(at.port, '127.0.0.1');
        const closed = collect(s);
        await new Promise((r) => s.once('connect', r));
        s.write('ping');
        const answered = await Promise.race([
          new Promise<boolean>((r) => s.once('data', () => r(true))),
          closed.then(() => false),
        ]);
        return { s, answered, closed };
      };
      const held = [];
      for (let i = 0; i < 5; i++) held.push(await open());
      assert.ok(
        held.every((h) => h.answered),
        'five connections served',
      );
      const extra = await Promise.all([open(), open()]);
      assert.deepEqual(
        extra.map((e) => e.answered),
        [false, false],
        'the sixth and seventh are closed unserved',
      );
      assert.deepEqual(refused, ['more than 5 connections', 'more than 5 connections']);
      held[0]!.s.end();
      await held[0]!.closed;
      const again = await open();
      assert.ok(again.answered, 'a connection is served again once one has closed');
      for (const h of [...held, again]) h.s.destroy();
    } finally {
      await client.close();
      await server.close();
    }
  });

  it('respects back-pressure: a slow reader gets every byte, and the tunnel does not buffer it all', async () => {
    const size = 8 * 1024 * 1024;
    const payload = randomBytes(size);
    const source = createServer((s) => {
      s.on('error', () => undefined);
      s.end(payload);
    });
    const t = await tunnel(await listening(source));
    try {
      const s = connect(t.at.port, '127.0.0.1');
      const before = process.memoryUsage().rss;
      const chunks: Buffer[] = [];
      let peak = 0;
      // Read 64 KiB every 10 ms (about 6 MB/s): far slower than the source can send.
      s.pause();
      const reader = setInterval(() => {
        let chunk: Buffer | null;
        let now = 0;
        while (now < 65536 && (chunk = s.read() as Buffer | null) !== null) {
          chunks.push(chunk);
          now += chunk.length;
        }
        peak = Math.max(peak, process.memoryUsage().rss - before);
      }, 10);
      await new Promise<void>((resolve) => s.once('end', resolve));
      clearInterval(reader);
      let rest: Buffer | null;
      while ((rest = s.read() as Buffer | null) !== null) chunks.push(rest);
      const back = Buffer.concat(chunks);
      assert.equal(back.length, size, 'every byte');
      assert.ok(back.equals(payload), 'in order');
      // Buffered in this process (both tunnel sides live here): bounded by the streams' high-water
      // marks and socket buffers, well below the payload.
      assert.ok(peak < size * 4, `memory grew by ${Math.round(peak / 1e6)} MB for an 8 MB payload`);
      s.destroy();
    } finally {
      await t.close();
      await new Promise((r) => source.close(r));
    }
  });

  it('shuts down cleanly with connections open: every connection closed, ports released', async () => {
    const t = await tunnel(echoAt);
    try {
      const apps = await Promise.all(
        Array.from({ length: 10 }, async () => {
          const s = connect(t.at.port, '127.0.0.1');
          const closed = collect(s);
          await new Promise((r) => s.once('connect', r));
          s.write('hello');
          await new Promise((r) => s.once('data', r)); // the connection is up end to end
          return { closed };
        }),
      );
      const started = Date.now();
      await t.close();
      assert.ok(Date.now() - started < 1000, 'close() does not wait for the applications');
      const outcomes = await Promise.all(apps.map((a) => a.closed));
      assert.equal(outcomes.length, 10, 'every application saw its connection closed');
      for (const port of [t.at.port, t.serverAt.port]) {
        const refused = await new Promise<boolean>((resolve) => {
          const s = connect(port, '127.0.0.1');
          s.once('connect', () => resolve(false));
          s.once('error', () => resolve(true));
        });
        assert.ok(refused, `port ${port} no longer accepts`);
      }
    } finally {
      await t.close().catch(() => undefined);
    }
  });
});
