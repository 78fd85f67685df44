/**
 * Leases: work that must have exactly one owner among the replicas of a KME (ingesting a link's
 * material, leading its post-processing, draining the cancel outbox) is done only by the holder of
 * its lease. A store shared by replicas (PostgreSQL) keeps leases where every replica sees them; a
 * store of one process needs none, and the KME then owns all such work itself.
 * Every backend passes test/stores/lease-conformance.ts.
 */
export interface LeaseStore {
  /**
   * Takes `name` for `holder`, or renews it when `holder` has it, for `ttlMs` from now by the
   * store's own clock (one clock for every replica). True when `holder` holds it now; false, and
   * nothing changes, while another holder's lease runs.
   */
  holdLease(name: string, holder: string, ttlMs: number): Promise<boolean>;
  /** Gives `name` up at once, if `holder` has it, so another replica need not wait for expiry. */
  releaseLease(name: string, holder: string): Promise<void>;
  /** Who holds `name` now, or null. */
  leaseHolder(name: string): Promise<string | null>;
}

/** Whether a store keeps leases (a store shared by replicas); otherwise the process owns all work. */
export const keepsLeases = (store: object): store is LeaseStore =>
  typeof (store as Partial<LeaseStore>).holdLease === 'function';

/** Leases of one process, on an injected clock: for the single-owner logic's tests and conformance. */
export class MemoryLeases implements LeaseStore {
  readonly #leases = new Map<string, { holder: string; expires: number }>();
  readonly #now: () => number;

  constructor(now: () => number = Date.now) {
    this.#now = now;
  }

  holdLease(name: string, holder: string, ttlMs: number): Promise<boolean> {
    const now = this.#now();
    const lease = this.#leases.get(name);
    if (lease && lease.holder !== holder && lease.expires > now) return Promise.resolve(false);
    this.#leases.set(name, { holder, expires: now + ttlMs });
    return Promise.resolve(true);
  }

  releaseLease(name: string, holder: string): Promise<void> {
    if (this.#leases.get(name)?.holder === holder) this.#leases.delete(name);
    return Promise.resolve();
  }

  leaseHolder(name: string): Promise<string | null> {
    const lease = this.#leases.get(name);
    return Promise.resolve(lease && lease.expires > this.#now() ? lease.holder : null);
  }
}
