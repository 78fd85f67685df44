import { x509 } from './x509.js';
import { existsSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { webcrypto } from 'node:crypto';
import { createCa, issueCertificate, type LeafRequest, type PemPair } from './certificates.js';

export interface IssuedRecord {
  serial: string;
  common_name: string;
  /** `urn:qks:sae:…` / `urn:qks:kme:…` when the certificate names an entity. */
  entity: string | null;
  cert: string;
  not_after: string;
  revoked_at: string | null;
}

const ALG = { name: 'ECDSA', namedCurve: 'P-256', hash: 'SHA-256' } as const;

const atomicWrite = (path: string, text: string, mode = 0o644) => {
  writeFileSync(`${path}.tmp`, text, { mode });
  renameSync(`${path}.tmp`, path);
};

/**
 * One certificate authority kept in a folder: `<name>.pem`, `<name>.key` (0600), an index of what
 * it issued (`<name>.index.json`) and its revocation list (`<name>.crl.pem`), which KMEs load.
 */
export class CertificateAuthority {
  readonly dir: string;
  readonly name: string;
  readonly #pair: PemPair;

  private constructor(dir: string, name: string, pair: PemPair) {
    this.dir = dir;
    this.name = name;
    this.#pair = pair;
  }

  get certFile(): string {
    return join(this.dir, `${this.name}.pem`);
  }
  get crlFile(): string {
    return join(this.dir, `${this.name}.crl.pem`);
  }
  get #indexFile(): string {
    return join(this.dir, `${this.name}.index.json`);
  }

  static async create(dir: string, name: string, commonName: string): Promise<CertificateAuthority> {
    if (existsSync(join(dir, `${name}.pem`))) throw new Error(`${join(dir, name)}.pem exists already`);
    const pair = await createCa(commonName);
    writeFileSync(join(dir, `${name}.pem`), pair.cert);
    writeFileSync(join(dir, `${name}.key`), pair.key, { mode: 0o600 });
    const ca = new CertificateAuthority(dir, name, pair);
    ca.#saveIndex([]);
    await ca.#writeCrl([]);
    return ca;
  }

  static open(dir: string, name: string): CertificateAuthority {
    const read = (ext: string) => {
      try {
        return readFileSync(join(dir, `${name}.${ext}`), 'utf8');
      } catch {
        throw new Error(`no CA ${name} in ${dir} (missing ${name}.${ext})`);
      }
    };
    return new CertificateAuthority(dir, name, { cert: read('pem'), key: read('key') });
  }

  list(): IssuedRecord[] {
    return JSON.parse(readFileSync(this.#indexFile, 'utf8')) as IssuedRecord[];
  }

  #saveIndex(records: IssuedRecord[]): void {
    atomicWrite(this.#indexFile, JSON.stringify(records, null, 2) + '\n');
  }

  /** Issues a certificate and writes it and its key (0600) as `<dir>/<fileName>.pem|.key`. */
  async issue(req: LeafRequest, dir: string, fileName: string): Promise<{ cert: string; key: string; serial: string }> {
    const pair = await issueCertificate(this.#pair, req);
    const parsed = new x509.X509Certificate(pair.cert);
    const cert = join(dir, `${fileName}.pem`);
    const key = join(dir, `${fileName}.key`);
    writeFileSync(cert, pair.cert);
    writeFileSync(key, pair.key, { mode: 0o600 });
    const entity = req.entity ? `urn:qks:${req.entity.kind}:${req.entity.id}` : null;
    this.#saveIndex([
      ...this.list(),
      {
        serial: parsed.serialNumber,
        common_name: req.commonName,
        entity,
        cert,
        not_after: parsed.notAfter.toISOString(),
        revoked_at: null,
      },
    ]);
    return { cert, key, serial: parsed.serialNumber };
  }

  /** Revokes by serial number or entity URI; rewrites the CRL. Returns the records revoked. */
  async revoke(match: { serial?: string; entity?: string }): Promise<IssuedRecord[]> {
    const now = new Date().toISOString();
    const records = this.list();
    const hit = records.filter(
      (r) =>
        r.revoked_at === null &&
        ((match.serial && r.serial === match.serial) || (match.entity && r.entity === match.entity)),
    );
    if (hit.length === 0) throw new Error('no valid certificate matches');
    for (const r of hit) r.revoked_at = now;
    this.#saveIndex(records);
    await this.#writeCrl(records.filter((r) => r.revoked_at !== null));
    return hit;
  }

  async #writeCrl(revoked: IssuedRecord[]): Promise<void> {
    const signingKey = await webcrypto.subtle.importKey(
      'pkcs8',
      x509.PemConverter.decodeFirst(this.#pair.key),
      ALG,
      false,
      ['sign'],
    );
    const caCert = new x509.X509Certificate(this.#pair.cert);
    const crl = await x509.X509CrlGenerator.create({
      issuer: caCert.subject,
      thisUpdate: new Date(Date.now() - 60_000),
      nextUpdate: new Date(Date.now() + 365 * 86_400_000),
      signingAlgorithm: ALG,
      signingKey: signingKey as CryptoKey,
      entries: revoked.map((r) => ({ serialNumber: r.serial, revocationDate: new Date(r.revoked_at!) })),
      extensions: [await x509.AuthorityKeyIdentifierExtension.create(caCert)],
    });
    // OpenSSL reads only the 'X509 CRL' label.
    atomicWrite(this.crlFile, x509.PemConverter.encode(crl.rawData, 'X509 CRL') + '\n');
  }
}
