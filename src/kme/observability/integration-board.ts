import { shortKeyId, type IntegrationReport } from '../../domain/integration-report.js';

export interface IntegrationEntry extends Omit<IntegrationReport, 'key_ID'> {
  readonly sae: string;
  /** Shortened key ID of the key in use. */
  readonly key_ID: string | null;
  readonly reported_at: number;
  /** No report for a while: the agent may be gone. */
  readonly stale: boolean;
}

export interface IntegrationBoardOptions {
  /** Reports older than this are shown as stale. */
  readonly staleAfterMs?: number;
  /** Reports older than this are forgotten. */
  readonly forgetAfterMs?: number;
  readonly maxEntries?: number;
}

/** The latest report of each integration agent (tunnel, stunnel, IPsec) of this KME's SAEs. */
export class IntegrationBoard {
  readonly #entries = new Map<string, Omit<IntegrationEntry, 'stale'>>();
  readonly #staleMs: number;
  readonly #forgetMs: number;
  readonly #max: number;

  constructor(opts: IntegrationBoardOptions = {}) {
    this.#staleMs = opts.staleAfterMs ?? 90_000;
    this.#forgetMs = opts.forgetAfterMs ?? 15 * 60_000;
    this.#max = opts.maxEntries ?? 500;
  }

  report(sae: string, report: IntegrationReport, now: number): void {
    const id = `${sae}\u0000${report.kind}\u0000${report.name}`;
    this.#entries.delete(id);
    this.#entries.set(id, {
      ...report,
      sae,
      key_ID: report.key_ID === null ? null : shortKeyId(report.key_ID),
      reported_at: now,
    });
    // Map order is insertion order: the first entry is the one reported longest ago.
    while (this.#entries.size > this.#max) this.#entries.delete(this.#entries.keys().next().value!);
  }

  list(now: number): IntegrationEntry[] {
    for (const [id, e] of this.#entries) if (now - e.reported_at > this.#forgetMs) this.#entries.delete(id);
    return [...this.#entries.values()]
      .map((e) => ({ ...e, stale: now - e.reported_at > this.#staleMs }))
      .sort((a, b) => a.sae.localeCompare(b.sae) || a.name.localeCompare(b.name));
  }
}
