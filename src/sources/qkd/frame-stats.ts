import type { LinkStats } from '../key-source.js';

/** What both ends record of a frame (the leader sends it with the frame's last message). */
export interface FrameSummary {
  readonly pulses: number;
  readonly clicks: number;
  readonly sifted: number;
  readonly secretBits: number;
  readonly qber: number;
  readonly efficiency: number;
  /** Why the frame gave no key, when it did not. */
  readonly discarded?: string;
}

const WINDOW_MS = 10_000;

/** Per-link statistics: rates over the frames of the last ten seconds, counts since start. */
export class LinkStatsRecorder {
  readonly #recent: Array<{ at: number; s: FrameSummary }> = [];
  readonly #reasons: Record<string, number> = {};
  readonly #now: () => number;
  readonly #since: number;
  #done = 0;
  #discarded = 0;
  #last: FrameSummary | undefined;
  #lastEfficiency = 0;

  constructor(now: () => number = Date.now) {
    this.#now = now;
    this.#since = now();
  }

  record(s: FrameSummary): void {
    this.#recent.push({ at: this.#now(), s });
    this.#last = s;
    if (s.efficiency > 0) this.#lastEfficiency = s.efficiency;
    if (s.discarded) {
      this.#discarded++;
      this.#reasons[s.discarded] = (this.#reasons[s.discarded] ?? 0) + 1;
    } else this.#done++;
  }

  get framesSeen(): number {
    return this.#done + this.#discarded;
  }

  stats(): LinkStats {
    const now = this.#now();
    while (this.#recent.length > 0 && this.#recent[0]!.at < now - WINDOW_MS) this.#recent.shift();
    const seconds = Math.max(1e-3, Math.min(WINDOW_MS, now - this.#since) / 1000);
    const sum = (f: (s: FrameSummary) => number) => this.#recent.reduce((t, r) => t + f(r.s), 0) / seconds;
    return {
      rawBps: sum((s) => s.clicks),
      siftedBps: sum((s) => s.sifted),
      secretBps: sum((s) => s.secretBits),
      qber: this.#last?.qber ?? 0,
      reconciliationEfficiency: this.#lastEfficiency,
      framesDone: this.#done,
      framesDiscarded: this.#discarded,
      discardReasons: { ...this.#reasons },
    };
  }
}
