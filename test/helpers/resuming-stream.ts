import { createHash, randomBytes } from 'node:crypto';
import { connect } from 'node:net';

/** What one application connection saw (times: performance.now()). */
export interface StreamConnection {
  /** Stream offset the connection started from (what had come back before it). */
  readonly from: number;
  readonly openedAt: number;
  closedAt: number;
  /** Bytes written on it, and bytes that came back on it. */
  written: number;
  echoed: number;
  firstEchoAt: number | undefined;
  lastEchoAt: number | undefined;
  /** It ended with an end of stream from the tunnel (a FIN); `error` if it failed instead. */
  endedByPeer: boolean;
  error: string | undefined;
}

export interface StreamResult {
  readonly connections: StreamConnection[];
  /** Length of the stream and SHA-256 of what was meant to go, and of what came back, in order. */
  readonly total: number;
  readonly sentSha256: string;
  readonly receivedSha256: string;
  /** Bytes written more than once: written on a connection, not carried, written again on the next. */
  readonly resentBytes: number;
}

export interface StreamOptions {
  /** Bytes written per tick and the tick (ms): the pace of the stream. */
  readonly chunk: number;
  readonly everyMs: number;
  /** At most this many bytes written and not yet echoed back. */
  readonly window: number;
  /** Streams until this says stop (asked every tick), then ends its last connection cleanly. */
  readonly until: () => boolean;
  /** Connections in a row that carry nothing before it gives up. */
  readonly maxIdleConnections?: number;
}

/**
 * An application that streams through a tunnel to an echo service and reads everything back: new
 * random bytes at a steady pace, at most `window` unanswered. When its connection ends (the tunnel
 * reached its maximum age, say), it knows from the echo what was carried, reconnects and sends the
 * rest again, as an application that must lose nothing does (docs/tls-psk.md). The echo is checked
 * in order, by hash, against what it meant to send.
 */
export async function resumingStream(port: number, o: StreamOptions): Promise<StreamResult> {
  const pending: Buffer[] = []; // generated, not yet echoed back, in order
  let pendingBytes = 0;
  let generated = 0;
  let done = false;
  const sent = createHash('sha256');
  const received = createHash('sha256');
  let echoedTotal = 0;
  const connections: StreamConnection[] = [];

  const next = (n: number) => {
    const b = randomBytes(n);
    sent.update(b);
    pending.push(b);
    pendingBytes += n;
    generated += n;
    return b;
  };
  /** Takes `d` off the front of what is pending; false if it is not what was sent there. */
  const take = (d: Buffer) => {
    let same = true;
    for (let at = 0; at < d.length;) {
      const head = pending[0]!;
      const n = Math.min(head.length, d.length - at);
      same &&= head.subarray(0, n).equals(d.subarray(at, at + n));
      if (n === head.length) pending.shift();
      else pending[0] = head.subarray(n);
      at += n;
    }
    pendingBytes -= d.length;
    return same;
  };

  const once = () =>
    new Promise<StreamConnection>((resolve) => {
      const c: StreamConnection = {
        from: echoedTotal,
        openedAt: performance.now(),
        closedAt: 0,
        written: 0,
        echoed: 0,
        firstEchoAt: undefined,
        lastEchoAt: undefined,
        endedByPeer: false,
        error: undefined,
      };
      const s = connect(port, '127.0.0.1');
      let timer: NodeJS.Timeout | undefined;
      let ending = false;
      const tick = () => {
        if (s.destroyed || s.writableEnded) return;
        if (o.until()) {
          done = true;
          ending = true;
          s.end();
          return;
        }
        if (pendingBytes + o.chunk <= o.window) {
          const b = next(o.chunk);
          c.written += b.length;
          s.write(b);
        }
      };
      s.once('connect', () => {
        // First what did not come back on the last connection, then new bytes.
        for (const b of pending) {
          c.written += b.length;
          s.write(b);
        }
        timer = setInterval(tick, o.everyMs);
      });
      s.on('data', (d: Buffer) => {
        const now = performance.now();
        c.firstEchoAt ??= now;
        c.lastEchoAt = now;
        // The echo must be exactly the front of what is pending: sent, in order, not yet back.
        if (d.length > pendingBytes || !take(d)) c.error ??= 'echo differs from what was sent';
        c.echoed += d.length;
        echoedTotal += d.length;
        received.update(d);
      });
      s.on('end', () => {
        c.endedByPeer = !ending;
      });
      s.on('error', (e: NodeJS.ErrnoException) => (c.error ??= e.code ?? e.message));
      s.on('close', () => {
        clearInterval(timer);
        c.closedAt = performance.now();
        resolve(c);
      });
    });

  for (let idle = 0; !done && idle < (o.maxIdleConnections ?? 3);) {
    const c = await once();
    connections.push(c);
    idle = c.echoed > 0 ? 0 : idle + 1;
    if (c.error) break;
  }
  const written = connections.reduce((a, c) => a + c.written, 0);
  return {
    connections,
    total: generated,
    sentSha256: sent.digest('hex'),
    receivedSha256: pendingBytes === 0 ? received.digest('hex') : `${pendingBytes} bytes never came back`,
    resentBytes: written - generated,
  };
}
