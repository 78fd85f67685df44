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

const WINDOW_SECONDS = 10;

/**
 * Per-link statistics: rates per second of link time (the frames' pulses at the repetition rate)
 * over the latest ten seconds' worth of frames, and counts since start. When frames are paced, as
 * in a KME, link time is wall-clock time.
 */
export class LinkStatsRecorder {
  readonly #recent: FrameSummary[] = [];
  readonly #reasons: Record<string, number> = {};
  readonly #repetitionRateHz: number;
  /** Sums over every frame since start (bits), for benchmarks. */
  readonly totals = { pulses: 0, clicks: 0, sifted: 0, secretBits: 0 };
  #done = 0;
  #discarded = 0;
  #last: FrameSummary | undefined;
  #lastEfficiency = 0;

  constructor(repetitionRateHz: number) {
    this.#repetitionRateHz = repetitionRateHz;
  }

  record(s: FrameSummary): void {
    this.totals.pulses += s.pulses;
    this.totals.clicks += s.clicks;
    this.totals.sifted += s.sifted;
    this.totals.secretBits += s.secretBits;
    this.#recent.push(s);
    let seconds = this.#recent.reduce((t, f) => t + f.pulses, 0) / this.#repetitionRateHz;
    while (this.#recent.length > 1 && seconds - this.#recent[0]!.pulses / this.#repetitionRateHz >= WINDOW_SECONDS) {
      seconds -= this.#recent.shift()!.pulses / this.#repetitionRateHz;
    }
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
    const seconds = this.#recent.reduce((t, f) => t + f.pulses, 0) / this.#repetitionRateHz;
    const sum = (f: (s: FrameSummary) => number) =>
      seconds > 0 ? this.#recent.reduce((t, r) => t + f(r), 0) / seconds : 0;
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
