import { EventEmitter } from 'node:events';
import type { AgreedKey } from './agreement/types.js';

export interface ActiveKey {
  readonly keyId: string;
  /** Key bytes; wiped when the key is retired. */
  readonly key: Buffer;
  readonly agreedAt: number;
}

export interface KeyRingEvents {
  /** A new current key; consumers switch to it for new sessions. */
  key: [ActiveKey];
  /** A key past its grace period: wiped, no longer to be found. */
  retired: [string];
}

/**
 * The keys one SAE pair holds: the current key, and for a grace period the ones before it, found
 * by key ID (a TLS PSK identity or IKE PPK_ID names the key it used). This is the one event
 * interface integrations listen to.
 */
export class KeyRing extends EventEmitter<KeyRingEvents> {
  readonly #keys = new Map<string, ActiveKey>();
  readonly #graceMs: number;
  readonly #now: () => number;
  #current: ActiveKey | undefined;
  readonly #timers = new Set<NodeJS.Timeout>();

  constructor(opts: { graceMs?: number; now?: () => number } = {}) {
    super();
    this.#graceMs = opts.graceMs ?? 60_000;
    this.#now = opts.now ?? Date.now;
  }

  /** The key to use now; undefined before the first agreement or after the current one expired. */
  current(): ActiveKey | undefined {
    return this.#current;
  }

  get(keyId: string): ActiveKey | undefined {
    return this.#keys.get(keyId);
  }

  /** Every key still held, newest last. */
  all(): ActiveKey[] {
    return [...this.#keys.values()];
  }

  add(agreed: AgreedKey): ActiveKey {
    const active: ActiveKey = { keyId: agreed.keyId, key: agreed.key, agreedAt: this.#now() };
    const previous = this.#current;
    this.#keys.set(active.keyId, active);
    this.#current = active;
    if (previous) this.#retireLater(previous.keyId);
    this.emit('key', active);
    return active;
  }

  /** The current key reached its limit with no successor: nothing is current until one comes. */
  expireCurrent(): void {
    if (!this.#current) return;
    this.#retireLater(this.#current.keyId);
    this.#current = undefined;
  }

  #retireLater(keyId: string): void {
    const timer = setTimeout(() => {
      this.#timers.delete(timer);
      this.retire(keyId);
    }, this.#graceMs);
    timer.unref();
    this.#timers.add(timer);
  }

  retire(keyId: string): void {
    const key = this.#keys.get(keyId);
    if (!key) return;
    key.key.fill(0);
    this.#keys.delete(keyId);
    if (this.#current?.keyId === keyId) this.#current = undefined;
    this.emit('retired', keyId);
  }

  /** Wipes every key. */
  clear(): void {
    for (const t of this.#timers) clearTimeout(t);
    this.#timers.clear();
    for (const id of [...this.#keys.keys()]) this.retire(id);
  }
}
