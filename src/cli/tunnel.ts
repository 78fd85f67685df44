import { Initiator } from '../sae/agreement/initiator.js';
import { Responder } from '../sae/agreement/responder.js';
import { KeyRing } from '../sae/key-ring.js';
import { Rotation } from '../sae/rotation.js';
import { TunnelClient, TunnelServer, type Endpoint } from '../integrations/tls-psk/psk-tunnel.js';
import { StunnelManager } from '../integrations/stunnel/stunnel-manager.js';
import { IntegrationReporter } from '../integrations/reporter.js';
import type { PskMode } from '../integrations/tls-psk/psk-tls.js';
import type { TUNNEL } from './commands.js';
import type { CommandLine } from './parse.js';
import { agreementTls, count, hostPort, identity, kmeClientOf, print, tokenClient } from './sae.js';
import { notifyReady } from './service.js';
import { onHangup, untilSignal } from './signals.js';
import { UsageError } from './usage-error.js';

/** What `qks service run` adds to a tunnel: the service's key size, and who hears of each new key. */
export interface TunnelHooks {
  readonly keyBits?: number;
  readonly onKey?: (keyId: string) => void;
}

export async function tunnelCommand(
  { values: v }: CommandLine<typeof TUNNEL.options>,
  engine: 'native' | 'stunnel' = 'native',
  hooks: TunnelHooks = {},
): Promise<number> {
  v.mode ??= 'psk_ke';
  const nativeOnly = (['max-connections', 'max-connection-age'] as const).filter((o) => v[o] !== undefined);
  if (engine === 'stunnel' && nativeOnly.length > 0) {
    throw new UsageError(`--${nativeOnly[0]} is for qks tunnel: stunnel's own connections are not managed by qks`);
  }
  if (v.mode !== 'psk_ke' && v.mode !== 'psk_dhe_ke') throw new UsageError('--mode must be psk_ke or psk_dhe_ke');
  const mode: PskMode = v.mode;
  if (v.stdio) {
    if (engine === 'stunnel') throw new UsageError('--stdio is for qks tunnel');
    return (await import('./tunnel-stdio.js')).tunnelStdio(v, mode);
  }
  if (!v.peer) throw new UsageError('--peer ID is required');
  const me = identity(v);
  const tokens = tokenClient(v, me.sae);
  const kme = kmeClientOf(me, tokens);
  const tls = agreementTls(me);
  const maxConnections = count(v['max-connections'], '--max-connections');
  const limit = maxConnections ? { maxConnections } : {};
  const ring = new KeyRing({ graceMs: 120_000 });
  ring.on('key', (k) => print({ event: 'key', key_ID: k.keyId }));
  if (hooks.onKey) ring.on('key', (k) => hooks.onKey!(k.keyId));
  // The operator dashboard shows which key this tunnel uses and when the next one comes.
  const reporter = new IntegrationReporter({
    kme,
    kind: engine === 'stunnel' ? 'stunnel' : 'tunnel',
    name: v.name ?? `${v.role}:${v.listen}`,
    peer: v.peer.split(',')[0]!,
    intervalMs: (count(v['report-every'], '--report-every') ?? 30) * 1000,
    onError: (e) => print({ event: 'report-failed', message: e.message }),
  });
  const rotatesEvery = v.role === 'client' ? (count(v['rotate-every'], '--rotate-every') ?? 300) * 1000 : null;
  ring.on('key', (k) =>
    reporter.update({
      keyId: k.keyId,
      state: 'up',
      // The client's next key is in use at 80 % of the key's age limit (Rotation's lead: its
      // agreement starts SETTLE_MS before); the server follows.
      rotatesAt: rotatesEvery === null ? null : k.agreedAt + rotatesEvery * 0.8,
    }),
  );
  reporter.start();
  const stops: Array<() => Promise<void> | void> = [
    () => reporter.stop(),
    () => kme.close(),
    () => tokens?.close(),
    () => ring.clear(),
  ];
  try {
    if (v.role === 'server') {
      const responder = new Responder({
        saeId: me.sae,
        peers: v.peer.split(','),
        kme,
        tls,
        ...hostPort(v.agree, '--agree'),
      });
      responder.on('keys', (a) => a.keys.forEach((k) => ring.add(k)));
      responder.on('failure', (e) => print({ event: 'refused', code: e.code, message: e.message }));
      await responder.listen();
      stops.unshift(() => responder.close());
      const [listen, target] = [hostPort(v.listen, '--listen'), hostPort(v.target, '--target')];
      if (engine === 'stunnel') {
        stops.unshift(await runStunnel('server', v.dir, listen, target, ring, mode));
      } else {
        const tunnel = new TunnelServer({
          listen,
          target,
          keys: ring,
          mode,
          ...limit,
          ...(v['max-connection-age']
            ? { maxConnectionAgeMs: count(v['max-connection-age'], '--max-connection-age')! * 1000 }
            : {}),
        });
        tunnel.on('connection', (c) => print({ event: 'connection', key_ID: c.keyId, mode: c.mode }));
        tunnel.on('refused', (r) => print({ event: 'refused', reason: r.reason }));
        print({ event: 'listening', ...(await tunnel.listen()), mode });
        stops.unshift(() => tunnel.close());
      }
    } else if (v.role === 'client') {
      const initiator = new Initiator({
        saeId: me.sae,
        peerSaeId: v.peer,
        peer: hostPort(v.agree, '--agree'),
        kme,
        tls,
      });
      stops.unshift(() => initiator.close());
      const every = (count(v['rotate-every'], '--rotate-every') ?? 300) * 1000;
      const uses = count(v['rotate-uses'], '--rotate-uses');
      const bytes = count(v['rotate-bytes'], '--rotate-bytes');
      if (engine === 'stunnel' && (uses || bytes)) {
        throw new UsageError('qks stunnel cannot count uses or bytes: rotate it with --rotate-every');
      }
      const rotation = new Rotation(() => initiator.agree(1, hooks.keyBits), ring, {
        maxAgeMs: every,
        // The server's side may be a stunnel, which loads each key from a file: a moment to do so.
        settleMs: SETTLE_MS,
        ...(uses ? { maxUses: uses } : {}),
        ...(bytes ? { maxBytes: bytes } : {}),
      });
      rotation.on('error', (e) => print({ event: 'error', message: e.message }));
      stops.unshift(() => rotation.stop());
      stops.unshift(
        onHangup(() => rotation.rotateNow().catch((e: Error) => print({ event: 'error', message: e.message }))),
      );
      await rotation.start();
      const maxAge = (count(v['max-connection-age'], '--max-connection-age') ?? (2 * every) / 1000) * 1000;
      const listen = hostPort(v.listen, '--listen');
      const server = hostPort(v.server, '--server');
      if (engine === 'stunnel') {
        stops.unshift(await runStunnel('client', v.dir, listen, server, ring, mode));
      } else {
        const tunnel = new TunnelClient({ listen, server, keys: ring, mode, maxConnectionAgeMs: maxAge, ...limit });
        tunnel.on('connection', (c) => print({ event: 'connection', key_ID: c.keyId, mode: c.mode }));
        tunnel.on('refused', (r) => print({ event: 'refused', reason: r.reason }));
        // Each connection is a use of its key, and what it carries counts against the key's bytes.
        tunnel.on('connection', (c) => rotation.recordUse(0, c.keyId));
        if (bytes) tunnel.on('traffic', (t) => rotation.recordBytes(t.bytes, t.keyId));
        print({ event: 'listening', ...(await tunnel.listen()), mode });
        stops.unshift(() => tunnel.close());
      }
    } else {
      throw new UsageError('--role must be client or server');
    }
    notifyReady();
    await untilSignal();
    return 0;
  } finally {
    for (const stop of stops) await stop();
  }
}

/** How long a tunnel client waits after each agreement before it uses the new key. */
export const SETTLE_MS = 250;

/** Runs a real stunnel on the ring's keys, supervised; returns what stops it. */
async function runStunnel(
  role: 'client' | 'server',
  dir: string | undefined,
  accept: Endpoint,
  connect: Endpoint,
  keys: KeyRing,
  mode: PskMode,
): Promise<() => Promise<void>> {
  if (!dir) throw new UsageError('qks stunnel needs --dir DIR for its configuration and secrets');
  const stunnel = new StunnelManager({ role, dir, accept, connect, keys, mode });
  stunnel.on('started', ({ pid }) => print({ event: 'stunnel-started', pid }));
  stunnel.on('exited', ({ code, signal, error }) =>
    print({ event: 'stunnel-exited', code, signal, ...(error === undefined ? {} : { error }) }),
  );
  stunnel.on('restarting', ({ inMs }) => print({ event: 'stunnel-restarting', in_ms: inMs }));
  await stunnel.start();
  print({ event: 'listening', ...accept, mode, config: stunnel.configFile, log: stunnel.logFile });
  return () => stunnel.stop();
}
