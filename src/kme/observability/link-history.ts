import type { LinkPool } from '../link-pool.js';

/** One sample of a link at this KME. */
export interface LinkSample {
  /** ms since the epoch. */
  readonly t: number;
  /** Secret key made since the previous sample, bit/s (the source's own figure when it measures it). */
  readonly rateBps: number;
  /** QBER when the source measures it, else null. */
  readonly qber: number | null;
  /** Pool levels; null when nobody was watching (see below). */
  readonly ownBlocks: number | null;
  readonly peerBlocks: number | null;
}

export interface LinkHistoryOptions {
  readonly intervalMs?: number;
  /** Samples kept per link (default: 10 minutes' worth). */
  readonly keep?: number;
  readonly now?: () => number;
}

/**
 * Samples every link of this KME at a fixed interval, for the dashboard's time series and the
 * measured key rate. The rate comes from how far the link's block numbers advanced, so it is the
 * rate key actually arrived at, whatever the source claims. Pool levels cost a count in the store
 * (milliseconds for a full pool), so they are sampled only while someone looks at the history.
 */
export class LinkHistory {
  readonly #pools: readonly LinkPool[];
  readonly #interval: number;
  readonly #keep: number;
  readonly #now: () => number;
  readonly #samples = new Map<string, LinkSample[]>();
  readonly #last = new Map<string, { t: number; seq: number }>();
  #timer: NodeJS.Timeout | undefined;
  #sampling: Promise<void> = Promise.resolve();
  /** Pool levels are sampled until then: a minute after the history was last read. */
  #watchedUntil = 0;

  constructor(pools: readonly LinkPool[], opts: LinkHistoryOptions = {}) {
    this.#pools = pools;
    this.#interval = opts.intervalMs ?? 2000;
    this.#keep = opts.keep ?? Math.ceil(600_000 / this.#interval);
    this.#now = opts.now ?? Date.now;
  }

  get intervalMs(): number {
    return this.#interval;
  }

  start(): void {
    for (const p of this.#pools) this.#last.set(p.linkId, { t: this.#now(), seq: p.latestSeq });
    this.#timer = setInterval(() => {
      this.#sampling = this.sample().catch(() => undefined);
    }, this.#interval);
    this.#timer.unref();
  }

  async stop(): Promise<void> {
    clearInterval(this.#timer);
    await this.#sampling;
  }

  /** Takes one sample of every link now. */
  async sample(): Promise<void> {
    for (const pool of this.#pools) {
      const t = this.#now();
      const seq = pool.latestSeq;
      const last = this.#last.get(pool.linkId) ?? { t, seq };
      this.#last.set(pool.linkId, { t, seq });
      const stats = pool.source.info().stats;
      const measured = t > last.t ? ((seq - last.seq) * pool.ends.blockBits * 1000) / (t - last.t) : 0;
      let list = this.#samples.get(pool.linkId);
      if (!list) this.#samples.set(pool.linkId, (list = []));
      const watched = t < this.#watchedUntil;
      const sample: LinkSample = {
        t,
        rateBps: stats ? stats.secretBps : Math.max(0, measured),
        qber: stats ? stats.qber : null,
        ownBlocks: watched ? await pool.ownBlocks() : null,
        peerBlocks: watched ? await pool.peerBlocks() : null,
      };
      list.push(sample);
      if (list.length > this.#keep) list.splice(0, list.length - this.#keep);
    }
  }

  /** Samples of one link from the last `ms` milliseconds, oldest first. */
  recent(linkId: string, ms = 300_000): LinkSample[] {
    this.#watchedUntil = this.#now() + 60_000;
    const since = this.#now() - ms;
    return (this.#samples.get(linkId) ?? []).filter((s) => s.t >= since);
  }

  latest(linkId: string): LinkSample | undefined {
    return this.#samples.get(linkId)?.at(-1);
  }
}
