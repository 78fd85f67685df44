import { QksError } from '../domain/errors.js';
import type { LeaseStore } from '../stores/leases.js';

export interface RequestOwnerOptions {
  /** The work's lease, e.g. `kme-b/link:<id>`. */
  readonly name: string;
  /** This replica (unique per process run). */
  readonly holder: string;
  readonly leases: LeaseStore;
  /** How long a lease runs without renewal; renewed every third of it while requests come. */
  readonly ttlMs: number;
  /** Starts the work; called when the lease is won. */
  readonly gain: () => Promise<void> | void;
  /** Stops the work; called when the lease is given up or may have run out, and on stop(). */
  readonly lose: () => Promise<void> | void;
  readonly onError?: (err: Error) => void;
  readonly now?: () => number;
}

/**
 * Work that follows its requests among the replicas of a KME: the follower end of a QKD link,
 * whose leader (at the peer KME) sends every message over one stream that the site's load
 * balancer gave to one replica. The replica the requests reach takes the lease (claim()) and keeps
 * it while they come; a replica that gets them while another holds the lease refuses
 * (LINK_OWNED_ELSEWHERE), and the leader reconnects, to land elsewhere. A replica gives the work up
 * once no request has come for a lease's lifetime, or before the lease can have run out by the
 * store's clock (the deadline counts from before the renewal was sent, as in SingleOwner).
 */
export class RequestOwner {
  readonly #o: RequestOwnerOptions;
  readonly #now: () => number;
  #owning = false;
  /** Local time until which the last successful renewal guarantees the lease. */
  #validUntil = 0;
  /** Requests being answered now, and when the last one came or ended. */
  #active = 0;
  #lastActivity = 0;
  #timer: NodeJS.Timeout | undefined;
  #deadline: NodeJS.Timeout | undefined;
  #stopped = false;
  /** The lease call in flight, which the requests of one moment share. */
  #holding: Promise<boolean> | undefined;
  /** Lease calls run one at a time, in order: a hand-back never overtakes a renewal. */
  #leaseCalls: Promise<unknown> = Promise.resolve();
  /** Gains and losses run one at a time, in order. */
  #transitions: Promise<void> = Promise.resolve();

  constructor(options: RequestOwnerOptions) {
    this.#o = options;
    this.#now = options.now ?? Date.now;
  }

  get owning(): boolean {
    return this.#owning;
  }

  /**
   * Runs `answer` as the work's owner: takes the lease first if this replica does not hold it.
   * Refuses (LINK_OWNED_ELSEWHERE) while another replica's lease runs.
   */
  async serve<T>(answer: () => Promise<T>): Promise<T> {
    if (this.#stopped) throw new QksError('PEER_KME_UNAVAILABLE', `${this.#o.name} is stopping here`);
    this.#active++;
    this.#lastActivity = this.#now();
    try {
      if (!this.#owning || this.#now() >= this.#validUntil) {
        if (!(await this.#hold())) {
          throw new QksError('LINK_OWNED_ELSEWHERE', `another replica of this KME runs ${this.#o.name}; connect again`);
        }
      }
      await this.#transitions;
      return await answer();
    } finally {
      this.#active--;
      this.#lastActivity = this.#now();
    }
  }

  /** Takes or renews the lease; gains the work when won, loses it when another holds it. */
  #hold(): Promise<boolean> {
    this.#holding ??= this.#inTurn(() => this.#renew()).finally(() => (this.#holding = undefined));
    return this.#holding;
  }

  #inTurn<T>(call: () => Promise<T>): Promise<T> {
    const turn = this.#leaseCalls.then(call);
    this.#leaseCalls = turn.catch(() => undefined);
    return turn;
  }

  /** Hands the lease back once the work has stopped, unless a request took the work again meanwhile. */
  #release(): Promise<void> {
    return this.#inTurn(async () => {
      await this.#transitions;
      if (!this.#owning) await this.#o.leases.releaseLease(this.#o.name, this.#o.holder).catch(() => undefined);
    });
  }

  async #renew(): Promise<boolean> {
    const sent = this.#now();
    let held: boolean;
    try {
      held = await this.#o.leases.holdLease(this.#o.name, this.#o.holder, this.#o.ttlMs);
    } catch (err) {
      // The store is unreachable: a lease held stands until its deadline (#tick).
      this.#o.onError?.(err as Error);
      return this.#owning && this.#now() < this.#validUntil;
    }
    if (this.#stopped) {
      if (held) await this.#o.leases.releaseLease(this.#o.name, this.#o.holder).catch(() => undefined);
      return false;
    }
    if (held) {
      // A tenth short: a timer fires late, and the work must stop before another replica may start it.
      this.#validUntil = sent + this.#o.ttlMs * 0.9;
      this.#armDeadline();
      if (!this.#owning) this.#transition(true);
      this.#schedule();
    } else if (this.#owning) this.#transition(false);
    return held;
  }

  /** Every third of the lease: renews it while requests come, gives the work up otherwise. */
  #schedule(): void {
    clearTimeout(this.#timer);
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

  async #tick(): Promise<void> {
    if (this.#stopped || !this.#owning) return;
    const idle = this.#active === 0 && this.#now() - this.#lastActivity >= this.#o.ttlMs;
    if (idle) {
      // The leader went elsewhere (or stopped): another replica may take the work at once.
      this.#transition(false);
      await this.#release();
      return;
    }
    await this.#hold();
    if (this.#owning) this.#schedule();
  }

  #transition(gain: boolean): void {
    this.#owning = gain;
    this.#transitions = this.#transitions
      .then(() => (gain ? this.#o.gain() : this.#o.lose()))
      .catch((err: unknown) => {
        this.#o.onError?.(err as Error);
        // Work that failed to start is not kept: the next request (here or elsewhere) starts it again.
        if (gain && this.#owning) {
          this.#transition(false);
          void this.#release();
        }
      });
  }

  /** Stops the work (if this replica has it) and hands the lease back. */
  async stop(): Promise<void> {
    this.#stopped = true;
    clearTimeout(this.#timer);
    clearTimeout(this.#deadline);
    await this.#holding?.catch(() => undefined);
    if (this.#owning) this.#transition(false);
    await this.#release();
  }
}
