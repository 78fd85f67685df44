import { parity32, type Bits } from './bits.js';
import { passLength, type PassSpec } from './cascade-plan.js';
import { paddedLength, PassOrder } from './cascade-shuffle.js';
import { CorrectorError, kernels } from './kernels.js';

// The responder's side lives in its own file; its users import it from here with the corrector.
export { CascadeResponder, responderViews } from './cascade-responder.js';

/**
 * Cascade between a corrector (this end changes its key) and a responder (the other end, whose
 * key is the reference; it only answers parity questions). Questions travel in batches: every
 * binary search under way asks its next half in the same message, so a pass costs about
 * log2(block size) round trips, not one per error.
 *
 * A question is a triple (pass, lo, hi): the parity of bits [lo, hi) of the key in that pass's
 * order. Every answer is one disclosed bit; `disclosed` counts them.
 */

/** What the corrector's kernel found wrong (kernels.h). */
const FAILURES: Record<number, string> = {
  [CorrectorError.WrongCount]: 'wrong number of parity answers',
  [CorrectorError.Inconsistent]: 'Cascade answers are inconsistent',
  [CorrectorError.NoMemory]: 'out of memory for Cascade',
};

/**
 * The corrector's side: a state machine fed with answers, producing the next questions. It runs
 * in C (`src/qkd/native/cascade.c`: every binary search's state in flat arrays indexed by its
 * block's number, pass by pass), on a copy of the key that is written back to `key` when Cascade
 * is done, and wiped by `wipe`.
 */
export class CascadeCorrector {
  readonly #key: Bits;
  readonly #passes: readonly PassSpec[];
  readonly #length: number[];
  readonly #handle: unknown;
  readonly #blocks: number;
  /** The kernel writes each batch here; `onAnswers` hands out a view of it. */
  readonly #out: Uint32Array;
  readonly #counts = new Float64Array(3);
  #done = false;

  constructor(key: Bits, n: number, passes: readonly PassSpec[]) {
    if (passes.length > 255) throw new RangeError('too many Cascade passes');
    this.#key = key;
    this.#passes = passes;
    this.#length = passes.map((p) => passLength(p, n));
    this.#blocks = passes.reduce((sum, p, i) => sum + Math.ceil(this.#length[i]! / p.blockSize), 0);
    // Every plan of planPasses has fewer blocks than this; a peer's plan with more would only
    // cost memory (about 33 bytes a block).
    if (this.#blocks > paddedLength(n) + 64) throw new RangeError('Cascade passes with too many blocks');
    const specs = new Uint32Array(4 * passes.length);
    const tables: Array<Int32Array | undefined> = [];
    passes.forEach((p, i) => {
      const order = new PassOrder(n, p.shuffle).tables;
      specs.set([this.#length[i]!, p.blockSize, order?.rowKey ?? 0, order?.columnKey ?? 0], 4 * i);
      tables.push(order?.rows, order?.columns);
    });
    this.#handle = kernels().correctorNew(key, n, specs, tables);
    this.#out = new Uint32Array(3 * this.#blocks);
  }

  get done(): boolean {
    return this.#done;
  }

  get disclosed(): number {
    return this.#counts[0]!;
  }

  get corrected(): number {
    return this.#counts[1]!;
  }

  get rounds(): number {
    return this.#counts[2]!;
  }

  /** How many top-level blocks all passes have: the size of the first batch. */
  get topLevelBlocks(): number {
    return this.#blocks;
  }

  /** The first batch: every top-level block of every pass (the responder's key never changes). */
  firstQuestions(): Uint32Array {
    const out = new Uint32Array(3 * this.#blocks);
    let at = 0;
    this.#passes.forEach((p, pass) => {
      const length = this.#length[pass]!;
      for (let lo = 0; lo < length; lo += p.blockSize) {
        out[at++] = pass;
        out[at++] = lo;
        out[at++] = Math.min(length, lo + p.blockSize);
      }
    });
    return out;
  }

  /**
   * Takes the answers to the last batch; returns the next one (valid until the next call), or
   * null when Cascade is finished and `key` corrected.
   */
  onAnswers(answers: Uint8Array): Uint32Array | null {
    const k = kernels();
    const count = k.correctorAnswers(this.#handle, answers, this.#out);
    const done = count === 0;
    k.correctorState(this.#handle, this.#counts, done ? this.#key : undefined);
    if (count < 0) throw new RangeError(FAILURES[count] ?? 'Cascade failed');
    this.#done = done;
    return done ? null : this.#out.subarray(0, 3 * count);
  }

  wipe(): void {
    kernels().correctorFree(this.#handle);
    this.#out.fill(0);
  }
}

/** Parity of a whole bit string (used by tests and checks). */
export const parityOf = (b: Bits): number => parity32(b.reduce((x, w) => x ^ w, 0));
