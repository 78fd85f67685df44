import {
  connectionOf,
  isOperatorDefined,
  loadIpsecConfig,
  type IpsecAgentConfig,
} from '../integrations/ipsec/agent-config.js';
import type { IpsecGateway } from '../integrations/ipsec/gateway.js';
import { IpsecAgent } from '../integrations/ipsec/ipsec-agent.js';
import { IntegrationReporter } from '../integrations/reporter.js';
import { LibreswanGateway } from '../integrations/ipsec/libreswan.js';
import { StrongSwanGateway } from '../integrations/ipsec/strongswan.js';
import { StrongSwanAttachedGateway } from '../integrations/ipsec/strongswan-attached.js';
import { Initiator } from '../sae/agreement/initiator.js';
import { Responder } from '../sae/agreement/responder.js';
import { KeyRing } from '../sae/key-ring.js';
import { Rotation } from '../sae/rotation.js';
import type { IPSEC } from './commands.js';
import type { CommandLine } from './parse.js';
import { agreementTls, identity, kmeClientOf, print } from './sae.js';
import { notifyReady } from './service.js';
import { onHangup, untilSignal } from './signals.js';
import { UsageError } from './usage-error.js';

export function gatewayOf(cfg: IpsecAgentConfig): IpsecGateway {
  const d = cfg.daemon;
  if (isOperatorDefined(cfg.connection)) {
    // parseIpsecConfig allows operator-defined connections with strongSwan only.
    if (d.type !== 'strongswan') throw new TypeError('an operator-defined connection needs strongSwan');
    return new StrongSwanAttachedGateway({ vici: d.vici, name: cfg.connection.name });
  }
  const connection = connectionOf(cfg.connection);
  if (d.type === 'strongswan') return new StrongSwanGateway({ vici: d.vici, connection });
  return new LibreswanGateway({
    ctlSocket: d.ctl_socket,
    secretsFile: d.secrets_file,
    dir: d.dir,
    connection,
    ...(d.libexec ? { libexec: d.libexec } : {}),
  });
}

export async function ipsecCommand(
  { values }: CommandLine<typeof IPSEC.options>,
  /** Told of each PPK installed (`qks service run` reports the first as the service's handle). */
  onKey?: (keyId: string) => void,
): Promise<number> {
  if (!values.config) throw new UsageError('--config FILE is required');
  const cfg = loadIpsecConfig(values.config);
  const me = identity({ ...cfg.sae, sae: cfg.sae.id }, (key) => `${values.config}: sae.${key}`);
  if (!isOperatorDefined(cfg.connection) && cfg.connection.ppk === 'optional') {
    print({
      event: 'warning',
      message: 'ppk is optional: a peer without the PPK gets a tunnel that is not quantum-safe (RFC 8784 downgrade)',
    });
  }
  const kme = kmeClientOf(me);
  const tls = agreementTls(me);
  const ring = new KeyRing({ graceMs: 2 * cfg.rotation.every_seconds * 1000 });
  const stops: Array<() => Promise<void> | void> = [() => kme.close(), () => ring.clear()];
  let rotation: Rotation | undefined;
  try {
    if (cfg.role === 'initiator') {
      const initiator = new Initiator({ saeId: me.sae, peerSaeId: cfg.peer, peer: cfg.agree, kme, tls });
      stops.unshift(() => initiator.close());
      rotation = new Rotation(() => initiator.agree(1), ring, {
        maxAgeMs: cfg.rotation.every_seconds * 1000,
        ...(cfg.rotation.bytes ? { maxBytes: cfg.rotation.bytes } : {}),
      });
      rotation.on('error', (e) => reportAgreementFailure(e));
      stops.unshift(() => rotation!.stop());
    } else {
      const responder = new Responder({ saeId: me.sae, peers: [cfg.peer], kme, tls, ...cfg.agree });
      responder.on('keys', (a) => a.keys.forEach((k) => ring.add(k)));
      responder.on('failure', (e) => print({ event: 'failure', code: e.code, message: e.message }));
      await responder.listen();
      stops.unshift(() => responder.close());
    }
    const agent = new IpsecAgent({
      role: cfg.role,
      gateway: gatewayOf(cfg),
      keys: ring,
      ...(rotation ? { rotation } : {}),
    });
    // The operator dashboard learns of the PPK in use and the next rotation through the KME.
    const reporter = new IntegrationReporter({
      kme,
      kind: 'ipsec',
      name: cfg.connection.name,
      peer: cfg.peer,
      onError: (e) => print({ event: 'report-failed', message: e.message }),
    });
    const every = cfg.rotation.every_seconds * 1000;
    const nextRotation = (keyId: string) => {
      const agreedAt = ring.get(keyId)?.agreedAt;
      return rotation && agreedAt !== undefined ? agreedAt + every * rotation.lead : null;
    };
    agent.on('installed', (e) => {
      print({ event: 'ppk-installed', key_ID: e.keyId });
      onKey?.(e.keyId);
      // The responder's SA comes up when the initiator's does; it reports the key it holds.
      if (cfg.role === 'responder') reporter.update({ keyId: e.keyId, state: 'up' });
    });
    agent.on('established', (e) => {
      print({ event: 'ike-sa-up', key_ID: e.keyId, ike_SA: e.ikeId, ms: e.ms, replaced: e.replaced });
      reporter.update({ keyId: e.keyId, state: 'up', rotatesAt: nextRotation(e.keyId) });
    });
    agent.on('restored', () => print({ event: 'restored', connection: cfg.connection.name }));
    agent.on('failure', (e) => {
      if (e.code === 'sa_down' && !agent.current) reporter.update({ state: 'down' });
    });
    reporter.start();
    stops.unshift(() => reporter.stop());
    agent.on('failure', (e) =>
      print({ event: 'failure', code: e.code, message: e.message, ...(e.keyId ? { key_ID: e.keyId } : {}) }),
    );
    await agent.start();
    stops.unshift(() => agent.stop());
    print({ event: 'running', role: cfg.role, daemon: cfg.daemon.type, connection: cfg.connection.name });
    notifyReady();
    if (rotation) {
      const r = rotation;
      stops.unshift(onHangup(() => r.rotateNow().catch(reportAgreementFailure)));
      void firstKey(r);
    }
    await untilSignal();
    return 0;
  } finally {
    for (const stop of stops) await stop();
  }
}

/** The peer's agent or a KME did not take part: the SAs that are up stay up. */
const reportAgreementFailure = (err: unknown) =>
  print({ event: 'failure', code: 'agreement', message: (err as Error).message });

/** The first agreement, retried while the peer's agent is not up; later ones follow the policy. */
async function firstKey(rotation: Rotation): Promise<void> {
  for (let attempt = 0; ; attempt++) {
    try {
      await rotation.start();
      return;
    } catch (err) {
      if ((err as Error).message === 'rotation stopped') return;
      reportAgreementFailure(err);
      await new Promise((r) => setTimeout(r, Math.min(5000, 500 * 2 ** attempt)));
    }
  }
}
