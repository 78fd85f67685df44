/**
 * Key rotation under load, for bench/tls-tunnel.ts: an application streams a known byte sequence
 * through a tunnel while keys rotate, and a target checks every byte in order. When the tunnel
 * ends a connection at its maximum age (docs/tls-psk.md), the application does what that page
 * says it must: it reads the target's count of bytes received, reconnects (the new connection
 * uses the current key) and resumes from there.
 */
import { randomBytes } from 'node:crypto';
import { connect, createServer, type AddressInfo, type Socket } from 'node:net';

/** The stream is this pattern repeated; a byte out of place or changed shows as a mismatch. */
const PATTERN = randomBytes(1 << 20);
const CHUNK = 64 * 1024;

export interface RotationFigures {
  readonly mbps: number;
  /** Keys rotated while the stream ran. */
  readonly rotations: number;
  /** Application connections it took (1 = never re-established). */
  readonly connections: number;
  /** Bytes the application wrote that the tunnel did not carry (after its limit) and were sent again. */
  readonly resentBytes: number;
  /** Bytes at the target that were not the expected byte at that offset. */
  readonly mismatchedBytes: number;
  /** Bytes of the stream that never arrived (0 when the transfer completed). */
  readonly lostBytes: number;
  /** Longest gap at the target between the last byte of one connection and the first of the next. */
  readonly maxGapMs: number;
}

/** Counts mismatching bytes of `d` against the pattern at stream offset `at`. */
function mismatches(d: Buffer, at: number): number {
  let bad = 0;
  for (let i = 0; i < d.length;) {
    const p = (at + i) % PATTERN.length;
    const n = Math.min(d.length - i, PATTERN.length - p);
    if (!d.subarray(i, i + n).equals(PATTERN.subarray(p, p + n))) {
      for (let j = 0; j < n; j++) if (d[i + j] !== PATTERN[p + j]) bad++;
    }
    i += n;
  }
  return bad;
}

/** The target: checks the stream across connections and answers each end with its count. */
export async function streamTarget() {
  const state = { received: 0, mismatched: 0, lastByteAt: 0, gaps: [] as number[] };
  const server = createServer({ allowHalfOpen: true }, (s) => {
    let first = true;
    s.on('data', (d: Buffer) => {
      const now = performance.now();
      if (first && state.lastByteAt) state.gaps.push(now - state.lastByteAt);
      first = false;
      state.mismatched += mismatches(d, state.received);
      state.received += d.length;
      state.lastByteAt = now;
    });
    s.on('end', () => s.end(String(state.received)));
    s.on('error', () => undefined);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const reset = () => Object.assign(state, { received: 0, mismatched: 0, lastByteAt: 0, gaps: [] });
  return { port: (server.address() as AddressInfo).port, state, reset, close: () => server.close() };
}

/** One application connection from offset `from`; resolves with the target's count (or `from`). */
function oneConnection(port: number, from: number, total: number, wrote: (n: number) => void): Promise<number> {
  return new Promise((resolve) => {
    let reply = '';
    let stopped = false;
    const s: Socket = connect(port, '127.0.0.1', () => {
      let at = from;
      const pump = () => {
        while (!stopped && at < total) {
          const p = at % PATTERN.length;
          const slice = PATTERN.subarray(p, p + Math.min(CHUNK, PATTERN.length - p, total - at));
          at += slice.length;
          wrote(slice.length);
          if (!s.write(slice)) return void s.once('drain', pump);
        }
        if (!stopped) s.end();
      };
      pump();
    });
    s.setEncoding('latin1');
    s.on('data', (d: string) => (reply += d));
    s.on('end', () => (stopped = true));
    s.on('error', () => (stopped = true));
    s.on('close', () => {
      const n = /^\d+$/.test(reply) ? Number(reply) : from;
      resolve(n);
    });
  });
}

/** Streams `megabytes` through the tunnel at `port` while `rotate` runs every `everyMs`. */
export async function streamWhileRotating(
  target: Awaited<ReturnType<typeof streamTarget>>,
  port: number,
  megabytes: number,
  everyMs: number,
  rotate: () => void | Promise<void>,
): Promise<RotationFigures> {
  target.reset();
  const total = megabytes * 1024 * 1024;
  let written = 0;
  let connections = 0;
  let rotations = 0;
  let pending: Promise<void> = Promise.resolve();
  const timer = setInterval(() => {
    pending = pending.then(rotate).then(() => void rotations++);
  }, everyMs);
  const t0 = performance.now();
  let acked = 0;
  // A connection that carried nothing in 50 tries is a failure, not a slow rotation.
  for (let idle = 0; acked < total && idle < 50;) {
    connections++;
    const next = await oneConnection(port, acked, total, (n) => (written += n));
    idle = next > acked ? 0 : idle + 1;
    acked = next;
  }
  const seconds = (performance.now() - t0) / 1000;
  clearInterval(timer);
  await pending; // no rotation may reach a tunnel that is being stopped
  return {
    mbps: megabytes / seconds,
    connections,
    rotations,
    resentBytes: written - target.state.received,
    mismatchedBytes: target.state.mismatched,
    lostBytes: total - Math.min(total, target.state.received),
    maxGapMs: Math.max(0, ...target.state.gaps),
  };
}
