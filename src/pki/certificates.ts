import { x509 } from './x509.js';
import { randomBytes, webcrypto } from 'node:crypto';
import { entityUri, type EntityKind } from '../auth/tls-identity.js';

const ALG = { name: 'ECDSA', namedCurve: 'P-256', hash: 'SHA-256' } as const;
const DAY_MS = 86_400_000;

/** A certificate and its private key, both PEM. */
export interface PemPair {
  readonly cert: string;
  readonly key: string;
}

const serial = () => {
  const bytes = randomBytes(16);
  bytes[0]! &= 0x7f; // positive
  return bytes.toString('hex');
};

/** PEM text ends with a newline: `cat cert.pem key.pem` must not fuse the END and BEGIN lines (rustls refuses that). */
const pemText = (pem: string): string => (pem.endsWith('\n') ? pem : `${pem}\n`);

async function keyPem(key: CryptoKey): Promise<string> {
  return pemText(
    x509.PemConverter.encode(await webcrypto.subtle.exportKey('pkcs8', key as webcrypto.CryptoKey), 'PRIVATE KEY'),
  );
}

const newKeys = () => webcrypto.subtle.generateKey(ALG, true, ['sign', 'verify']) as Promise<CryptoKeyPair>;

/** A self-signed CA certificate for one trust domain (SAEs, or KMEs). */
export async function createCa(commonName: string, days = 3650): Promise<PemPair> {
  const keys = await newKeys();
  const cert = await x509.X509CertificateGenerator.createSelfSigned({
    serialNumber: serial(),
    name: `CN=${commonName}`,
    notBefore: new Date(Date.now() - 60_000),
    notAfter: new Date(Date.now() + days * DAY_MS),
    signingAlgorithm: ALG,
    keys,
    extensions: [
      new x509.BasicConstraintsExtension(true, 0, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign, true),
      await x509.SubjectKeyIdentifierExtension.create(keys.publicKey),
    ],
  });
  return { cert: pemText(cert.toString('pem')), key: await keyPem(keys.privateKey) };
}

export interface LeafRequest {
  readonly commonName: string;
  /** Names the holder as an SAE or a KME (see auth/tls-identity.ts); absent for plain servers. */
  readonly entity?: { kind: EntityKind; id: string };
  readonly server?: { dns: readonly string[]; ips: readonly string[] };
  readonly client?: boolean;
  readonly days?: number;
  /** Explicit validity, e.g. for certificates that must already have expired in tests. */
  readonly notBefore?: Date;
  readonly notAfter?: Date;
}

/** Issues a certificate signed by `ca`. */
export async function issueCertificate(ca: PemPair, req: LeafRequest): Promise<PemPair> {
  const caCert = new x509.X509Certificate(ca.cert);
  const caKey = await webcrypto.subtle.importKey('pkcs8', x509.PemConverter.decodeFirst(ca.key), ALG, false, ['sign']);
  const keys = await newKeys();
  const names: x509.JsonGeneralName[] = [];
  if (req.entity) names.push({ type: 'url', value: entityUri(req.entity.kind, req.entity.id) });
  for (const dns of req.server?.dns ?? []) names.push({ type: 'dns', value: dns });
  for (const ip of req.server?.ips ?? []) names.push({ type: 'ip', value: ip });
  const usages: string[] = [];
  if (req.server) usages.push(x509.ExtendedKeyUsage.serverAuth);
  if (req.client) usages.push(x509.ExtendedKeyUsage.clientAuth);
  const cert = await x509.X509CertificateGenerator.create({
    serialNumber: serial(),
    subject: `CN=${req.commonName}`,
    issuer: caCert.subject,
    notBefore: req.notBefore ?? new Date(Date.now() - 60_000),
    notAfter: req.notAfter ?? new Date(Date.now() + (req.days ?? 825) * DAY_MS),
    signingAlgorithm: ALG,
    publicKey: keys.publicKey,
    signingKey: caKey as CryptoKey,
    extensions: [
      new x509.BasicConstraintsExtension(false, undefined, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature, true),
      new x509.ExtendedKeyUsageExtension(usages),
      new x509.SubjectAlternativeNameExtension(names),
      await x509.AuthorityKeyIdentifierExtension.create(caCert),
      await x509.SubjectKeyIdentifierExtension.create(keys.publicKey),
    ],
  });
  return { cert: pemText(cert.toString('pem')), key: await keyPem(keys.privateKey) };
}
