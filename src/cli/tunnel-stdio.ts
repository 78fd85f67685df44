import { Duplex } from 'node:stream';
import { Initiator } from '../sae/agreement/initiator.js';
import { KeyRing } from '../sae/key-ring.js';
import { TunnelClient } from '../integrations/tls-psk/psk-tunnel.js';
import type { PskMode } from '../integrations/tls-psk/psk-tls.js';
import type { TUNNEL } from './commands.js';
import type { CommandLine } from './parse.js';
import { agreementTls, count, hostPort, identity, kmeClientOf, tokenClient } from './sae.js';
import { SETTLE_MS } from './tunnel.js';
import { UsageError } from './usage-error.js';

/** stdout carries the connection: events go to stderr, which ssh shows the user. */
const report = (value: unknown) => process.stderr.write(JSON.stringify(value) + '\n');

/**
 * `qks tunnel --role client --stdio`: one connection, carried between stdin/stdout and the tunnel
 * server, under a key agreed for it alone (ssh's ProxyCommand). Exits when the connection closes:
 * 0 if it was established, 1 if the agreement or the TLS handshake failed.
 */
export async function tunnelStdio(v: CommandLine<typeof TUNNEL.options>['values'], mode: PskMode): Promise<number> {
  if (v.role !== 'client') throw new UsageError('--stdio is for --role client');
  const extra = (['listen', 'rotate-every', 'rotate-uses', 'rotate-bytes', 'max-connections'] as const).filter(
    (o) => v[o] !== undefined,
  );
  if (extra.length > 0) throw new UsageError(`--${extra[0]} is not for --stdio: each run carries one connection`);
  if (!v.peer) throw new UsageError('--peer ID is required');
  const server = hostPort(v.server, '--server');
  const me = identity(v);
  const tokens = tokenClient(v, me.sae);
  const kme = kmeClientOf(me, tokens);
  const initiator = new Initiator({
    saeId: me.sae,
    peerSaeId: v.peer,
    peer: hostPort(v.agree, '--agree'),
    kme,
    tls: agreementTls(me),
  });
  const ring = new KeyRing();
  try {
    const agreed = await initiator.agree(1);
    // The server side may still be storing the key when the agreement answers.
    await new Promise((r) => setTimeout(r, SETTLE_MS));
    for (const k of agreed.keys) report({ event: 'key', key_ID: ring.add(k).keyId });
    const age = count(v['max-connection-age'], '--max-connection-age');
    const tunnel = new TunnelClient({
      listen: { host: '127.0.0.1', port: 0 }, // not listened on: stdio is the one connection
      server,
      keys: ring,
      mode,
      ...(age ? { maxConnectionAgeMs: age * 1000 } : {}),
    });
    let established = false;
    tunnel.on('connection', (c) => {
      established = true;
      report({ event: 'connection', key_ID: c.keyId, mode: c.mode });
    });
    tunnel.on('refused', (r) => report({ event: 'refused', reason: r.reason }));
    const stdio = Duplex.from({ readable: process.stdin, writable: process.stdout });
    // Node never closes stdout: once the server side has ended the connection and everything it
    // sent is written, the process exits, which is the end of stream ssh waits for.
    const closed = new Promise<void>((resolve) => {
      stdio.once('close', () => resolve());
      stdio.once('finish', () => {
        report({ event: 'ended', by: 'server side' });
        resolve();
      });
    });
    tunnel.carry(stdio);
    // ssh ends its ProxyCommand with SIGHUP when it is done; a user may send SIGINT or SIGTERM.
    const signalled = new Promise<void>((resolve) => {
      for (const s of ['SIGHUP', 'SIGINT', 'SIGTERM'] as const) process.once(s, () => resolve());
    });
    await Promise.race([closed, signalled]);
    await tunnel.close();
    return established ? 0 : 1;
  } catch (e) {
    report({ event: 'error', message: (e as Error).message });
    return 1;
  } finally {
    await initiator.close();
    await kme.close();
    await tokens?.close();
    ring.clear();
  }
}
