import type { Duplex } from 'node:stream';

/** How long a side that ended cleanly may take to deliver what it holds before it is destroyed. */
export const DEFAULT_CLOSE_GRACE_MS = 5000;

/**
 * Joins two sockets both ways. pipe() respects back-pressure and passes an end of stream on, so a
 * half-close (the application is done sending but still reads) crosses the tunnel; the sockets are
 * half-open for that. A socket that fails or is reset takes the other with it at once. One that
 * ended cleanly lets the other deliver what it still holds (a slow reader may have much queued)
 * before it is closed, within `graceMs`.
 */
export function splice(a: Duplex, b: Duplex, graceMs = DEFAULT_CLOSE_GRACE_MS): void {
  a.pipe(b);
  b.pipe(a);
  const closeAfter = (from: Duplex, to: Duplex) => () => {
    if (to.destroyed) return;
    if (!from.readableEnded) return void to.destroy(); // a failure or reset: nothing more to deliver
    // pipe() has ended `to`: once it has delivered everything and its peer closed, it is done.
    const timer = setTimeout(() => to.destroy(), graceMs);
    to.once('close', () => clearTimeout(timer));
    to.on('data', () => undefined); // nothing can go anywhere now; reading on avoids a reset
    to.resume();
    if (!to.writableEnded) to.end();
  };
  a.once('close', closeAfter(a, b));
  b.once('close', closeAfter(b, a));
  a.on('error', () => b.destroy());
  b.on('error', () => a.destroy());
}

/**
 * Ends a tunnelled connection gracefully at `ageMs`: nothing more is taken from `inbound`, what
 * was taken is flushed through `tls`, which then ends (close_notify, FIN); the other side passes
 * the end on, and everything still coming back is delivered. If that has not finished within
 * `graceMs`, the connection is destroyed.
 */
export function endAtAge(
  tls: Duplex,
  inbound: Duplex,
  ageMs: number,
  graceMs: number,
  onAged: () => void = () => undefined,
): void {
  const timer = setTimeout(() => {
    inbound.unpipe(tls);
    inbound.pause();
    tls.end();
    onAged();
    const kill = setTimeout(() => {
      tls.destroy();
      inbound.destroy();
    }, graceMs);
    tls.once('close', () => clearTimeout(kill));
  }, ageMs);
  tls.once('close', () => clearTimeout(timer));
}
