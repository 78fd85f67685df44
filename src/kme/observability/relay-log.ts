/** One relay this KME took part in: as the master's KME (`source`) or as a trusted node (`through`). */
export interface RelayRecord {
  readonly at: number;
  readonly role: 'source' | 'through';
  readonly path: readonly string[];
  readonly keys: number;
  /** Key bits relayed (the SDN view's virtual-link bandwidth, docs/sdn.md). */
  readonly bits: number;
  readonly ok: boolean;
}

export interface RelaySummary {
  /** Relays started here or passing through, not yet answered. */
  readonly in_progress: number;
  readonly originated: { readonly ok: number; readonly failed: number };
  readonly passed_on: { readonly ok: number; readonly failed: number };
  /** The latest relays, newest first (paths and counts; no key IDs, no key material). */
  readonly recent: readonly RelayRecord[];
}

const KEPT = 16;

/** Counts and the latest paths of the relays of one KME, for the dashboard and `qks status`. */
export class RelayLog {
  #inProgress = 0;
  readonly #counts = { source: { ok: 0, failed: 0 }, through: { ok: 0, failed: 0 } };
  readonly #recent: RelayRecord[] = [];

  /** Runs one relay, counting it in progress meanwhile, then as done or failed. */
  async track<T>(
    role: RelayRecord['role'],
    path: readonly string[],
    keys: number,
    relay: () => Promise<T>,
    bits = 0,
  ): Promise<T> {
    this.#inProgress++;
    let ok = false;
    try {
      const result = await relay();
      ok = true;
      return result;
    } finally {
      this.#inProgress--;
      this.#counts[role][ok ? 'ok' : 'failed']++;
      this.#recent.unshift({ at: Date.now(), role, path: [...path], keys, bits, ok });
      this.#recent.length = Math.min(this.#recent.length, KEPT);
    }
  }

  summary(): RelaySummary {
    return {
      in_progress: this.#inProgress,
      originated: { ...this.#counts.source },
      passed_on: { ...this.#counts.through },
      recent: this.#recent.map((r) => ({ ...r, path: [...r.path] })),
    };
  }
}
