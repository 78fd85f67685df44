import { EventEmitter } from 'node:events';
import type { AgreedKeys } from './agreement/types.js';
import type { ActiveKey, KeyRing } from './key-ring.js';

/** When a key is refreshed: the SDN slides' "refresh type and value". Any limit reached refreshes it. */
export interface RotationPolicy {
  /** Age limit of a key, ms. */
  readonly maxAgeMs?: number;
  /** Uses limit (e.g. sessions keyed with it). */
  readonly maxUses?: number;
  /** Bytes protected under one key. */
  readonly maxBytes?: number;
  /** Fraction of a limit at which the next key is agreed, so it is ready before the limit (default 0.8). */
  readonly lead?: number;
  /**
   * How long after an agreement the new key is taken into use: the responder hands its copy on only
   * after the acknowledgement, and a peer that must load it (a stunnel server reloading its secrets
   * file) needs a moment more. A rotation by time starts its agreement this much before the lead.
   * Default 0.
   */
  readonly settleMs?: number;
}

export interface RotationEvents {
  agreed: [AgreedKeys];
  error: [Error];
}

/**
 * Drives rotation on the initiator's side: agrees the first key, then the next one before any limit
 * of the current one is reached, and on demand. The responder's ring follows, since each agreement
 * hands the same key to both sides.
 */
export class Rotation extends EventEmitter<RotationEvents> {
  readonly #agree: () => Promise<AgreedKeys>;
  readonly #ring: KeyRing;
  readonly #policy: RotationPolicy;
  #uses = 0;
  #bytes = 0;
  #agreeing: Promise<ActiveKey> | undefined;
  #timer: NodeJS.Timeout | undefined;
  #expiry: NodeJS.Timeout | undefined;
  #stopped = false;

  constructor(agree: () => Promise<AgreedKeys>, ring: KeyRing, policy: RotationPolicy) {
    super();
    for (const [name, v] of Object.entries(policy)) {
      if (v !== undefined && !(typeof v === 'number' && v > 0)) throw new TypeError(`${name} must be positive`);
    }
    if ((policy.lead ?? 0.8) >= 1) throw new TypeError('lead must be below 1');
    this.#agree = agree;
    this.#ring = ring;
    this.#policy = policy;
  }

  get lead(): number {
    return this.#policy.lead ?? 0.8;
  }

  /** Agrees the first key; later keys follow the policy. */
  start(): Promise<ActiveKey> {
    return this.rotateNow();
  }

  /** Agrees a new key now (or joins the agreement already running). */
  rotateNow(): Promise<ActiveKey> {
    this.#agreeing ??= this.#agreeNext().finally(() => (this.#agreeing = undefined));
    return this.#agreeing;
  }

  /**
   * Counts one use of the current key (and bytes it protected); agrees the next one when a limit
   * comes near. With `keyId`, use of a key that is no longer current is not counted.
   */
  recordUse(bytes = 0, keyId?: string): void {
    this.#count(1, bytes, keyId);
  }

  /** Counts bytes protected under the current key (or under `keyId`, if that is current). */
  recordBytes(bytes: number, keyId?: string): void {
    this.#count(0, bytes, keyId);
  }

  #count(uses: number, bytes: number, keyId: string | undefined): void {
    if (keyId !== undefined && keyId !== this.#ring.current()?.keyId) return;
    this.#uses += uses;
    this.#bytes += bytes;
    const { maxUses, maxBytes } = this.#policy;
    const near = (used: number, limit?: number) => limit !== undefined && used >= Math.floor(limit * this.lead);
    if (near(this.#uses, maxUses) || near(this.#bytes, maxBytes)) void this.#retrying();
    const over = (used: number, limit?: number) => limit !== undefined && used >= limit;
    if (over(this.#uses, maxUses) || over(this.#bytes, maxBytes)) this.#ring.expireCurrent();
  }

  async #agreeNext(): Promise<ActiveKey> {
    const agreed = await this.#agree();
    if (this.#policy.settleMs) await new Promise((r) => setTimeout(r, this.#policy.settleMs));
    if (this.#stopped) throw new Error('rotation stopped');
    let active: ActiveKey | undefined;
    for (const k of agreed.keys) active = this.#ring.add(k);
    this.#uses = 0;
    this.#bytes = 0;
    this.emit('agreed', agreed);
    this.#schedule();
    return active!;
  }

  /** Agreement in the background, retried with backoff until it succeeds or rotation stops. */
  async #retrying(): Promise<void> {
    for (let attempt = 0; !this.#stopped; attempt++) {
      try {
        await this.rotateNow();
        return;
      } catch (err) {
        if (this.#stopped) return;
        this.emit('error', err as Error);
        await new Promise((r) => setTimeout(r, Math.min(5000, 200 * 2 ** attempt)));
      }
    }
  }

  #schedule(): void {
    clearTimeout(this.#timer);
    clearTimeout(this.#expiry);
    const { maxAgeMs } = this.#policy;
    if (maxAgeMs === undefined || this.#stopped) return;
    // The key is taken into use settleMs after its agreement: the agreement starts that much
    // earlier, so the key is in use at the lead, not settleMs past it (past the limit, if short).
    const startIn = Math.max(0, maxAgeMs * this.lead - (this.#policy.settleMs ?? 0));
    this.#timer = setTimeout(() => void this.#retrying(), startIn);
    this.#expiry = setTimeout(() => this.#ring.expireCurrent(), maxAgeMs);
  }

  stop(): void {
    this.#stopped = true;
    clearTimeout(this.#timer);
    clearTimeout(this.#expiry);
  }
}
