import { x509 } from './x509.js';
import { existsSync, openSync, closeSync, readFileSync, statSync, unlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { webcrypto } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { createCa, issueCertificate, type LeafRequest, type PemPair } from './certificates.js';
import { readCrl } from './crl.js';
import { writeFileAtomic } from '../config/files.js';

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

/** A year: how long a revocation list is valid unless the CA was made with another lifetime. */
const DEFAULT_CRL_LIFETIME_MS = 365 * 86_400_000;
/** thisUpdate is set this far back, for clocks a little behind the CA's. */
const BACKDATE_MS = 60_000;
/** A lock older than this was left by a process that died holding it. */
const STALE_LOCK_MS = 30_000;

export interface CrlRenewal {
  readonly renewed: boolean;
  readonly nextUpdate: Date;
  readonly lifetimeMs: number;
}

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

  /** `crlLifetimeMs`: how long each revocation list it issues is valid; renewals keep it. */
  static async create(
    dir: string,
    name: string,
    commonName: string,
    crlLifetimeMs = DEFAULT_CRL_LIFETIME_MS,
  ): Promise<CertificateAuthority> {
    if (existsSync(join(dir, `${name}.pem`))) throw new Error(`${join(dir, name)}.pem exists already`);
    const pair = await createCa(commonName);
    writeFileSync(join(dir, `${name}.pem`), pair.cert);
    writeFileSync(join(dir, `${name}.key`), pair.key, { mode: 0o600 });
    const ca = new CertificateAuthority(dir, name, pair);
    ca.#saveIndex([]);
    await ca.#writeCrl([], crlLifetimeMs);
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
    writeFileAtomic(this.#indexFile, JSON.stringify(records, null, 2) + '\n');
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
    const record = {
      serial: parsed.serialNumber,
      common_name: req.commonName,
      entity,
      cert,
      not_after: parsed.notAfter.toISOString(),
      revoked_at: null,
    };
    await this.#locked(() => Promise.resolve(this.#saveIndex([...this.list(), record])));
    return { cert, key, serial: parsed.serialNumber };
  }

  /** Revokes by serial number or entity URI; rewrites the CRL. Returns the records revoked. */
  revoke(match: { serial?: string; entity?: string }): Promise<IssuedRecord[]> {
    return this.#locked(async () => {
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
      await this.#writeCrl(
        records.filter((r) => r.revoked_at !== null),
        this.#crlLifetime(),
      );
      return hit;
    });
  }

  /**
   * Issues the revocation list again with a new nextUpdate, naming the same certificates. With
   * `ifDue`, only once less than half of its lifetime is left (so KMEs sharing the CA renew it
   * once between them). `lifetimeMs` defaults to the current list's.
   */
  renewCrl(opts: { lifetimeMs?: number; ifDue?: boolean } = {}): Promise<CrlRenewal> {
    return this.#locked(async () => {
      const lifetimeMs = opts.lifetimeMs ?? this.#crlLifetime();
      if (opts.ifDue) {
        const next = this.#currentCrl()?.nextUpdate;
        if (next && next.getTime() - Date.now() > lifetimeMs / 2)
          return { renewed: false, nextUpdate: next, lifetimeMs };
      }
      const nextUpdate = await this.#writeCrl(
        this.list().filter((r) => r.revoked_at !== null),
        lifetimeMs,
      );
      return { renewed: true, nextUpdate, lifetimeMs };
    });
  }

  #currentCrl() {
    try {
      return readCrl(this.crlFile);
    } catch {
      return undefined;
    }
  }

  /** The lifetime the current list was issued with (a year when there is none to read). */
  #crlLifetime(): number {
    const crl = this.#currentCrl();
    if (!crl?.nextUpdate) return DEFAULT_CRL_LIFETIME_MS;
    const ms = crl.nextUpdate.getTime() - crl.thisUpdate.getTime() - BACKDATE_MS;
    return ms > 0 ? ms : DEFAULT_CRL_LIFETIME_MS;
  }

  /**
   * Runs `fn` holding `<name>.lock`: the index and the list are read, changed and written by one
   * process at a time (a KME renewing the list must not write it back without a revocation that
   * `qks pki revoke` made meanwhile). A lock left by a dead process is taken over when stale.
   */
  async #locked<T>(fn: () => Promise<T>): Promise<T> {
    const lock = join(this.dir, `${this.name}.lock`);
    const deadline = Date.now() + 2 * STALE_LOCK_MS;
    for (;;) {
      try {
        closeSync(openSync(lock, 'wx', 0o600));
        break;
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
        try {
          if (Date.now() - statSync(lock).mtimeMs > STALE_LOCK_MS) unlinkSync(lock);
        } catch {
          // Released meanwhile.
        }
        if (Date.now() > deadline) throw new Error(`${lock} stays locked`, { cause: err });
        await sleep(20 + Math.random() * 30);
      }
    }
    try {
      return await fn();
    } finally {
      unlinkSync(lock);
    }
  }

  async #writeCrl(revoked: IssuedRecord[], lifetimeMs: number): Promise<Date> {
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
      thisUpdate: new Date(Date.now() - BACKDATE_MS),
      nextUpdate: new Date(Date.now() + lifetimeMs),
      signingAlgorithm: ALG,
      signingKey: signingKey as CryptoKey,
      entries: revoked.map((r) => ({ serialNumber: r.serial, revocationDate: new Date(r.revoked_at!) })),
      extensions: [await x509.AuthorityKeyIdentifierExtension.create(caCert)],
    });
    // OpenSSL reads only the 'X509 CRL' label.
    writeFileAtomic(this.crlFile, x509.PemConverter.encode(crl.rawData, 'X509 CRL') + '\n');
    return crl.nextUpdate!;
  }
}
