import { existsSync, readFileSync } from 'node:fs';
import { Initiator } from '../sae/agreement/initiator.js';
import { Responder } from '../sae/agreement/responder.js';
import type { AgreedKeys, SaeTls } from '../sae/agreement/types.js';
import { KeyRing } from '../sae/key-ring.js';
import { KmeClient, type KeyContainer } from '../sae/kme-client.js';
import { Rotation, type RotationPolicy } from '../sae/rotation.js';
import { TokenClient } from '../sae/token-client.js';
import { keepSecretsFile } from '../sae/secrets-file.js';
import type { SAE } from './commands.js';
import { readManifest } from './manifest.js';
import { checkReadable, fromManifest } from './named-files.js';
import type { CommandLine } from './parse.js';
import type { ValuesOf } from './spec.js';
import { onHangup, untilSignal } from './signals.js';
import { UsageError } from './usage-error.js';

type Values = ValuesOf<typeof SAE.options>;
/** What names an SAE and its KME on the command line. */
export type IdentityValues = Pick<
  Values,
  'sae' | 'manifest' | 'kme' | 'ca' | 'crl' | 'cert' | 'key' | 'issuer' | 'client-secret' | 'resource'
>;

export interface Identity {
  sae: string;
  kme: string;
  ca: string;
  cert: string;
  key: string;
  /** The SAE CA's revocation list, for the key agreement. */
  crl?: string;
}

/** The list `qks init` and `qks pki` write beside a CA certificate (`sae-ca.pem` → `sae-ca.crl.pem`). */
function crlBeside(ca: string): string | undefined {
  const file = ca.replace(/\.pem$/, '.crl.pem');
  return file !== ca && existsSync(file) ? file : undefined;
}

/** `label` names where each value came from in errors: a flag (`--ca`) by default. */
export function identity(v: IdentityValues, label = (option: string) => `--${option}`): Identity {
  const found = identityOf(v);
  const given = (option: 'ca' | 'cert' | 'key' | 'crl') => ({ what: label(option), path: v[option] });
  checkReadable(
    v.manifest
      ? [...fromManifest(`${label('manifest')} ${v.manifest}`, found.sae, found), given('crl')]
      : [given('ca'), given('cert'), given('key'), given('crl')],
  );
  const crl = v.crl ?? crlBeside(found.ca);
  return crl ? { ...found, crl } : found;
}

function identityOf(v: IdentityValues): Identity {
  if (!v.sae) throw new UsageError('--sae ID is required');
  if (v.manifest) {
    const m = readManifest(v.manifest);
    const sae = m.saes.find((s) => s.id === v.sae);
    if (!sae)
      throw new UsageError(`SAE ${v.sae} is not in ${v.manifest}; it has ${m.saes.map((s) => s.id).join(', ')}`);
    const kme = m.kmes.find((k) => k.id === sae.kme);
    if (!kme) throw new UsageError(`${v.manifest} names no KME ${sae.kme} (the KME of ${sae.id})`);
    return { sae: sae.id, kme: kme.url, ca: m.ca, cert: sae.cert, key: sae.key };
  }
  if (!v.kme || !v.ca || !v.cert || !v.key) throw new UsageError('give --manifest, or --kme, --ca, --cert and --key');
  return { sae: v.sae, kme: v.kme, ca: v.ca, cert: v.cert, key: v.key };
}

export const count = (text: string | undefined, flag: string): number | undefined => {
  if (text === undefined) return undefined;
  const n = Number(text);
  if (!Number.isSafeInteger(n) || n <= 0) throw new UsageError(`${flag} must be a positive integer`);
  return n;
};

export const hostPort = (text: string | undefined, flag: string) => {
  const m = text?.match(/^(.+):(\d+)$/);
  if (!m) throw new UsageError(`${flag} must be HOST:PORT`);
  return { host: m[1]!.replace(/^\[|\]$/g, ''), port: Number(m[2]) };
};

export const print = (value: unknown) => process.stdout.write(JSON.stringify(value) + '\n');

const redact = (c: KeyContainer, show: boolean) =>
  show ? c : { ...c, keys: c.keys.map((k) => ({ ...k, key: '(hidden: use --show-keys)' })) };

const agreedLine = (a: AgreedKeys, show: boolean) => ({
  event: 'agreed',
  exchange: a.exchange,
  peer: a.peer,
  key_IDs: a.keys.map((k) => k.keyId),
  ...(show ? { keys: a.keys.map((k) => k.key.toString('base64')) } : {}),
  timings_ms: Object.fromEntries(Object.entries(a.timings).map(([k, v]) => [k, Math.round(v * 1000) / 1000])),
});

export async function saeCommand({ sub, values: v }: CommandLine<typeof SAE.options>): Promise<number> {
  const me = identity(v);
  const tokens = tokenClient(v, me.sae);
  const kme = kmeClientOf(me, tokens);
  const show = v['show-keys'] ?? false;
  try {
    switch (sub!.name) {
      case 'status':
        if (!v.slave) throw new UsageError('status needs --slave ID');
        print(await kme.status(v.slave));
        return 0;
      case 'get-key': {
        if (!v.slave) throw new UsageError('get-key needs --slave ID');
        const number = count(v.number, '--number');
        const size = count(v.size, '--size');
        print(redact(await kme.getKeys(v.slave, { ...(number ? { number } : {}), ...(size ? { size } : {}) }), show));
        return 0;
      }
      case 'get-key-with-ids': {
        const ids = (v['key-id'] ?? []).flatMap((ids) => ids.split(',')).filter((id) => id !== '');
        if (!v.master || ids.length === 0) throw new UsageError('get-key-with-ids needs --master ID and --key-id ID');
        print(redact(await kme.getKeysWithIds(v.master, ids), show));
        return 0;
      }
      case 'agree':
        return await agree(v, me, kme, show);
      default:
        throw new Error(`no runner for qks sae ${sub!.name}`);
    }
  } finally {
    await kme.close();
    await tokens?.close();
  }
}

/** The SAE's credentials for the key agreement with its peer SAEs. */
export const agreementTls = (me: Identity): SaeTls => ({
  ca: readFileSync(me.ca),
  cert: readFileSync(me.cert),
  key: readFileSync(me.key),
  ...(me.crl ? { crlFile: me.crl } : {}),
});

/** The SAE's ETSI client: its certificate, and its tokens when it has an issuer. */
export const kmeClientOf = (me: Identity, tokens?: TokenClient): KmeClient =>
  new KmeClient({
    url: me.kme,
    ca: me.ca,
    cert: me.cert,
    key: me.key,
    ...(tokens ? { authHeaders: tokens.headers } : {}),
  });

export function tokenClient(v: IdentityValues, sae: string): TokenClient | undefined {
  if (!v.issuer) return undefined;
  const secret = v['client-secret'] ?? process.env['QKS_CLIENT_SECRET'];
  if (!secret) throw new UsageError('--issuer needs the client secret in QKS_CLIENT_SECRET or --client-secret');
  return new TokenClient({
    issuer: v.issuer,
    clientId: sae,
    clientSecret: secret,
    ...(v.resource ? { resource: v.resource } : {}),
  });
}

async function agree(v: Values, me: Identity, kme: KmeClient, show: boolean): Promise<number> {
  if (!v.peer) throw new UsageError('agree needs --peer ID');
  const tls = agreementTls(me);
  const ring = new KeyRing();
  const stopFile = v['secrets-file'] ? keepSecretsFile(v['secrets-file'], ring, me.sae, v.peer) : () => undefined;
  try {
    if (v.role === 'responder') {
      const responder = new Responder({
        saeId: me.sae,
        peers: v.peer.split(','),
        kme,
        tls,
        ...hostPort(v.listen, '--listen'),
      });
      responder.on('keys', (a) => {
        for (const k of a.keys) ring.add(k);
        print(agreedLine(a, show));
      });
      responder.on('failure', (e) => print({ event: 'refused', peer: e.peer, code: e.code, message: e.message }));
      const addr = await responder.listen();
      print({ event: 'listening', sae: me.sae, ...addr });
      await untilSignal();
      await responder.close();
      return 0;
    }
    if (v.role !== 'initiator') throw new UsageError('--role must be initiator or responder');
    const initiator = new Initiator({
      saeId: me.sae,
      peerSaeId: v.peer,
      peer: hostPort(v.connect, '--connect'),
      kme,
      tls,
    });
    const number = count(v.number, '--number') ?? 1;
    const size = count(v.size, '--size');
    const agreeOnce = () => initiator.agree(number, size);
    try {
      if (v.once) {
        const agreed = await agreeOnce();
        for (const k of agreed.keys) ring.add(k);
        print(agreedLine(agreed, show));
        return 0;
      }
      const every = count(v['rotate-every'], '--rotate-every');
      const policy: RotationPolicy = { maxAgeMs: (every ?? 60) * 1000 };
      const rotation = new Rotation(agreeOnce, ring, policy);
      rotation.on('agreed', (a) => print(agreedLine(a, show)));
      rotation.on('error', (e) => print({ event: 'error', message: e.message }));
      onHangup(() => rotation.rotateNow());
      await rotation.start();
      await untilSignal();
      rotation.stop();
      return 0;
    } finally {
      initiator.close();
    }
  } finally {
    stopFile();
    ring.clear();
  }
}
