import type { LeaseStore } from '../stores/leases.js';

export interface SingleOwnerOptions {
  /** The work's lease, e.g. `link:<id>` or `outbox`. */
  readonly name: string;
  /** This replica (unique per process run). */
  readonly holder: string;
  readonly leases: LeaseStore;
  /** How long a lease runs without renewal; renewed every third of it. */
  readonly ttlMs: number;
  /** Starts the work; called when the lease is won. */
  readonly gain: () => Promise<void> | void;
  /** Stops the work; called when the lease is lost or may have run out, and on stop(). */
  readonly lose: () => Promise<void> | void;
  readonly onError?: (err: Error) => void;
  readonly now?: () => number;
}

/**
 * Runs one piece of work on exactly one replica: it holds the work's lease, renewing it, and starts
 * the work when it wins the lease. It stops the work before the lease can have run out by the
 * store's clock: the deadline counts from before the renewal was sent, so a replica that cannot
 * reach the store (or is paused) gives the work up no later than another replica may take it.
 */
export class SingleOwner {
  readonly #o: SingleOwnerOptions;
  readonly #now: () => number;
  #owning = false;
  /** Local time until which the last successful renewal guarantees the lease. */
  #validUntil = 0;
  #timer: NodeJS.Timeout | undefined;
  #deadline: NodeJS.Timeout | undefined;
  #stopped = false;
  #ticking: Promise<void> = Promise.resolve();
  /** Gains and losses run one at a time, in order. */
  #transitions: Promise<void> = Promise.resolve();

  constructor(options: SingleOwnerOptions) {
    this.#o = options;
    this.#now = options.now ?? Date.now;
  }

  get owning(): boolean {
    return this.#owning;
  }

  /** Tries for the lease at once, then every third of its lifetime. */
  start(): Promise<void> {
    return this.#tick();
  }

  #tick(): Promise<void> {
    return (this.#ticking = this.#renew());
  }

  async #renew(): Promise<void> {
    if (this.#stopped) return;
    const sent = this.#now();
    let held: boolean | undefined;
    try {
      held = await this.#o.leases.holdLease(this.#o.name, this.#o.holder, this.#o.ttlMs);
    } catch (err) {
      // The store is unreachable: the lease stands until its deadline, which the timer enforces.
      this.#o.onError?.(err as Error);
    }
    if (this.#stopped) return;
    if (held === true) {
      // A tenth short: a timer fires late, and the work must stop before another replica may start it.
      this.#validUntil = sent + this.#o.ttlMs * 0.9;
      this.#armDeadline();
      if (!this.#owning) this.#transition(true);
    } else if (held === false && this.#owning) {
      this.#transition(false);
    }
    this.#timer = setTimeout(() => void this.#tick(), Math.max(this.#o.ttlMs / 3, 1));
    this.#timer.unref();
  }

  #armDeadline(): void {
    clearTimeout(this.#deadline);
    this.#deadline = setTimeout(
      () => {
        if (this.#owning && this.#now() >= this.#validUntil) this.#transition(false);
      },
      Math.max(this.#validUntil - this.#now(), 0),
    );
    this.#deadline.unref();
  }

  #transition(gain: boolean): void {
    this.#owning = gain;
    this.#transitions = this.#transitions
      .then(() => (gain ? this.#o.gain() : this.#o.lose()))
      .catch((err: unknown) => this.#o.onError?.(err as Error));
  }

  /** Stops the work (if this replica has it) and hands the lease back. */
  async stop(): Promise<void> {
    this.#stopped = true;
    clearTimeout(this.#timer);
    clearTimeout(this.#deadline);
    // A renewal in flight would otherwise take the lease again after it is handed back.
    await this.#ticking;
    if (this.#owning) this.#transition(false);
    await this.#transitions;
    await this.#o.leases.releaseLease(this.#o.name, this.#o.holder).catch(() => undefined);
  }
}
