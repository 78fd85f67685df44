/** What the KME-to-KME channel has done lately, per peer: the numbers behind "sync lag and failures". */
export interface PeerSyncState {
  readonly peer: string;
  /** Round trip of the latest confirmed reservation batch, ms. */
  readonly lastLagMs: number | null;
  readonly lastOkAt: number | null;
  readonly lastFailureAt: number | null;
  readonly lastFailure: string | null;
  readonly failures: number;
  readonly batches: number;
}

export type SyncFailure = 'unreachable' | 'refused';

export interface PeerSyncObserver {
  synced(peer: string, seconds: number): void;
  failed(peer: string, reason: SyncFailure): void;
}

/** Keeps the latest state per peer and passes every event on (to the metrics). */
export class PeerSyncTracker implements PeerSyncObserver {
  readonly #states = new Map<string, PeerSyncState>();
  readonly #next: PeerSyncObserver | undefined;
  readonly #now: () => number;

  constructor(peers: readonly string[], next?: PeerSyncObserver, now: () => number = Date.now) {
    this.#next = next;
    this.#now = now;
    for (const peer of peers) {
      this.#states.set(peer, {
        peer,
        lastLagMs: null,
        lastOkAt: null,
        lastFailureAt: null,
        lastFailure: null,
        failures: 0,
        batches: 0,
      });
    }
  }

  synced(peer: string, seconds: number): void {
    const s = this.#states.get(peer);
    if (s) this.#states.set(peer, { ...s, lastLagMs: seconds * 1000, lastOkAt: this.#now(), batches: s.batches + 1 });
    this.#next?.synced(peer, seconds);
  }

  failed(peer: string, reason: SyncFailure): void {
    const s = this.#states.get(peer);
    if (s) this.#states.set(peer, { ...s, lastFailureAt: this.#now(), lastFailure: reason, failures: s.failures + 1 });
    this.#next?.failed(peer, reason);
  }

  list(): PeerSyncState[] {
    return [...this.#states.values()];
  }
}
