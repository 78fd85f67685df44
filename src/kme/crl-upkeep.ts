import { existsSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import type { Logger } from 'pino';
import { CertificateAuthority } from '../pki/authority.js';
import { readCrl } from '../pki/crl.js';

/** A revocation list as the dashboard, the overview API and the metrics show it. */
export interface CrlStatus {
  /** Whose certificates it lists: `sae_api` (SAE CA) or `kme_api` (KME CA). */
  api: string;
  file: string;
  next_update: string | null;
  seconds_left: number | null;
  /** `expiring`: less than `warn_before_seconds` left; `expired`: every handshake checked against it fails. */
  state: 'ok' | 'expiring' | 'expired' | 'unreadable';
  /** Whether this KME renews it. */
  renew: boolean;
  error?: string;
}

export interface CrlUpkeepOptions {
  readonly lists: ReadonlyArray<{ api: string; file: string }>;
  readonly renew: boolean;
  readonly warnBeforeMs: number;
  readonly checkIntervalMs: number;
  readonly log: Logger;
}

/** The CA that issued `<dir>/<name>.crl.pem` (qks init's layout), when its key is here. */
function caOf(file: string): CertificateAuthority | undefined {
  const name = basename(file).match(/^(.+)\.crl\.pem$/)?.[1];
  if (!name || !existsSync(join(dirname(file), `${name}.key`))) return undefined;
  return CertificateAuthority.open(dirname(file), name);
}

/**
 * Keeps the revocation lists valid: an expired list makes every handshake checked against it
 * fail. With `renew`, a list is issued again once half its lifetime is gone, with the CA key
 * beside it (several KMEs sharing the CA renew it once between them: the CA holds a lock). Either
 * way, a list with less than `warnBeforeMs` left is logged (once per list issued) and shown.
 */
export class CrlUpkeep {
  readonly #opts: CrlUpkeepOptions;
  readonly #warned = new Map<string, string>();
  #timer: NodeJS.Timeout | undefined;
  #checking: Promise<void> | undefined;

  constructor(opts: CrlUpkeepOptions) {
    this.#opts = opts;
  }

  start(): void {
    this.#timer = setInterval(() => void this.check(), this.#opts.checkIntervalMs);
    this.#timer.unref();
  }

  async stop(): Promise<void> {
    clearInterval(this.#timer);
    await this.#checking;
  }

  /** Renews what is due, then warns of what expires soon. */
  check(): Promise<void> {
    this.#checking ??= this.#check().finally(() => (this.#checking = undefined));
    return this.#checking;
  }

  async #check(): Promise<void> {
    const { log } = this.#opts;
    for (const { api, file } of this.#opts.lists) {
      if (this.#opts.renew) {
        try {
          const ca = caOf(file);
          if (!ca) throw new Error(`no CA key beside ${file}`);
          const r = await ca.renewCrl({ ifDue: true });
          if (r.renewed) log.info({ crl: file, next_update: r.nextUpdate.toISOString() }, 'revocation list renewed');
        } catch (err) {
          log.error({ crl: file, err: (err as Error).message }, 'revocation list not renewed');
        }
      }
      const s = this.#statusOf(api, file, Date.now());
      const seen = `${s.state} ${s.next_update}`;
      if (s.state === 'ok' || this.#warned.get(file) === seen) continue;
      this.#warned.set(file, seen);
      const fields = { crl: file, next_update: s.next_update, seconds_left: s.seconds_left, renew: s.renew };
      if (s.state === 'expiring') log.warn(fields, 'revocation list expires soon; renew it (qks pki renew-crl)');
      else log.error({ ...fields, err: s.error }, 'revocation list expired or unreadable: handshakes fail');
    }
  }

  status(now = Date.now()): CrlStatus[] {
    return this.#opts.lists.map(({ api, file }) => this.#statusOf(api, file, now));
  }

  #statusOf(api: string, file: string, now: number): CrlStatus {
    const base = { api, file, renew: this.#opts.renew };
    try {
      const next = readCrl(file).nextUpdate;
      const left = next ? (next.getTime() - now) / 1000 : null;
      const state =
        left === null ? 'ok' : left <= 0 ? 'expired' : left * 1000 <= this.#opts.warnBeforeMs ? 'expiring' : 'ok';
      return { ...base, next_update: next?.toISOString() ?? null, seconds_left: left, state };
    } catch (err) {
      return { ...base, next_update: null, seconds_left: null, state: 'unreadable', error: (err as Error).message };
    }
  }
}
