import { flipBit, parity32, type Bits } from './bits.js';
import { ParityIndex } from './parity-index.js';
import { passLength, type PassSpec } from './cascade-plan.js';
import { paddedLength, PassOrder } from './cascade-shuffle.js';

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

/** Where a search's fields sit in its block's four words of CascadeCorrector's state. */
const LO = 0;
const HI = 1;
const CHECKED = 2;
const FLIPS = 3;

/**
 * The corrector's side: a state machine fed with answers, producing the next questions.
 *
 * Every top-level block of every pass has a number (pass by pass, in order: the order of the first
 * batch of questions), and at most one binary search runs in a block at a time, so a search's
 * state lives in typed arrays indexed by its block's number, and the queues are arrays of such
 * numbers: no objects per search, nothing for the garbage collector.
 */
export class CascadeCorrector {
  readonly #key: Bits;
  readonly #n: number;
  readonly #passes: readonly PassSpec[];
  /** Per pass: its order (key positions both ways), its length, block size and 1/size. */
  readonly #orders: PassOrder[];
  readonly #length: Int32Array;
  readonly #size: Float64Array;
  readonly #perSize: Float64Array;
  /** Per pass: the number of its first block (one more entry: the total). */
  readonly #first: Int32Array;
  readonly #views: ParityIndex[] = [];
  /** Per block: its pass, the responder's parity, whether ours differs, whether a search runs. */
  readonly #passOf: Uint8Array;
  readonly #top: Uint8Array;
  readonly #odd: Uint8Array;
  readonly #searching: Uint8Array;
  /** Per block, the responder's parity of the range its search has left. */
  readonly #parity: Uint8Array;
  /**
   * Per block, four words side by side (one cache line, not four): its search's range [lo, hi),
   * `flips` when that range was last known odd, and the bits flipped in the block so far (the
   * cached oddness holds while that count is unchanged).
   */
  readonly #state: Int32Array;
  /** Searches to look at next, the spare buffer for the round after, and those asked about. */
  #pending: Int32Array;
  #pendingCount = 0;
  #spare: Int32Array;
  readonly #asked: Int32Array;
  #askedCount = 0;
  #opened = -1;
  #answered = false;
  disclosed = 0;
  corrected = 0;
  rounds = 0;

  constructor(key: Bits, n: number, passes: readonly PassSpec[]) {
    if (passes.length > 255) throw new RangeError('too many Cascade passes');
    this.#key = key;
    this.#n = n;
    this.#passes = passes;
    this.#orders = passes.map((p) => new PassOrder(n, p.shuffle));
    this.#length = Int32Array.from(passes, (p) => passLength(p, n));
    this.#size = Float64Array.from(passes, (p) => p.blockSize);
    this.#perSize = Float64Array.from(passes, (p) => 1 / p.blockSize);
    this.#first = new Int32Array(passes.length + 1);
    passes.forEach((p, i) => (this.#first[i + 1] = this.#first[i]! + Math.ceil(this.#length[i]! / p.blockSize)));
    const blocks = this.#first[passes.length]!;
    // Every plan of planPasses has fewer blocks than this; a peer's plan with more would only
    // cost memory (about 33 bytes a block).
    if (blocks > paddedLength(n) + 64) throw new RangeError('Cascade passes with too many blocks');
    this.#passOf = new Uint8Array(blocks);
    passes.forEach((_, i) => this.#passOf.fill(i, this.#first[i], this.#first[i + 1]));
    this.#top = new Uint8Array(blocks);
    this.#odd = new Uint8Array(blocks);
    this.#searching = new Uint8Array(blocks);
    this.#parity = new Uint8Array(blocks);
    this.#state = new Int32Array(4 * blocks);
    this.#pending = new Int32Array(blocks);
    this.#spare = new Int32Array(blocks);
    this.#asked = new Int32Array(blocks);
  }

  get done(): boolean {
    return this.#opened === this.#passes.length - 1 && this.#pendingCount === 0 && this.#askedCount === 0;
  }

  /** How many top-level blocks all passes have: the size of the first batch. */
  get topLevelBlocks(): number {
    return this.#top.length;
  }

  /** The first batch: every top-level block of every pass (the responder's key never changes). */
  firstQuestions(): Uint32Array {
    const out = new Uint32Array(3 * this.#first[this.#passes.length]!);
    let at = 0;
    for (let pass = 0; pass < this.#passes.length; pass++) {
      const size = this.#passes[pass]!.blockSize;
      const length = this.#length[pass]!;
      for (let lo = 0; lo < length; lo += size) {
        out[at++] = pass;
        out[at++] = lo;
        out[at++] = Math.min(length, lo + size);
      }
    }
    return out;
  }

  /** Takes the answers to the last batch; returns the next one, or null when Cascade is finished. */
  onAnswers(answers: Uint8Array): Uint32Array | null {
    const bit = (i: number) => (answers[i >>> 3]! >>> (i & 7)) & 1;
    this.rounds++;
    if (!this.#answered) {
      const blocks = this.#top.length;
      this.#checkLength(answers, blocks);
      this.#answered = true;
      for (let i = 0; i < blocks; i++) this.#top[i] = bit(i);
      this.disclosed += blocks;
      this.#openNext();
    } else {
      const count = this.#askedCount;
      this.#checkLength(answers, count);
      this.disclosed += count;
      // #step never adds to the asked list, so it is read in place.
      this.#askedCount = 0;
      for (let i = 0; i < count; i++) this.#step(this.#asked[i]!, bit(i));
    }
    return this.#nextQuestions();
  }

  #checkLength(answers: Uint8Array, count: number): void {
    if (answers.length !== (count + 7) >>> 3) throw new RangeError('wrong number of parity answers');
  }

  #nextQuestions(): Uint32Array | null {
    for (;;) {
      // Searches down to one bit need no question: that bit is wrong.
      const ready = this.#pending;
      const count = this.#pendingCount;
      this.#pending = this.#spare;
      this.#spare = ready;
      this.#pendingCount = 0;
      for (let i = 0; i < count; i++) {
        const s = ready[i]!;
        if (!this.#stillOdd(s)) this.#finish(s);
        else if (this.#state[4 * s + HI]! - this.#state[4 * s + LO]! === 1) this.#fix(s);
        else this.#asked[this.#askedCount++] = s;
      }
      if (this.#pendingCount > 0) continue;
      if (this.#askedCount > 0) break;
      if (this.#opened === this.#passes.length - 1) return null;
      // From the third pass on (whole-key-sized blocks in the improved variants, few errors
      // left) the remaining passes run together: a few duplicate parities instead of ~log2(n)
      // round trips per pass.
      do this.#openNext();
      while (this.#opened >= 2 && this.#opened < this.#passes.length - 1);
    }
    const out = new Uint32Array(this.#askedCount * 3);
    for (let i = 0, at = 0; i < this.#askedCount; i++) {
      const s = this.#asked[i]!;
      const lo = this.#state[4 * s + LO]!;
      out[at++] = this.#passOf[s]!;
      out[at++] = lo;
      out[at++] = lo + ((this.#state[4 * s + HI]! - lo) >>> 1);
    }
    return out;
  }

  #openNext(): void {
    const pass = ++this.#opened;
    const spec = this.#passes[pass]!;
    const view = new ParityIndex(this.#orders[pass]!.view(this.#key), spec.blockSize);
    this.#views[pass] = view;
    const size = spec.blockSize;
    const length = this.#length[pass]!;
    for (let s = this.#first[pass]!, lo = 0; s < this.#first[pass + 1]!; s++, lo += size) {
      this.#odd[s] = view.range(lo, Math.min(length, lo + size)) ^ this.#top[s]!;
      if (this.#odd[s]) this.#search(s);
    }
  }

  /** Starts a search of block s (its number). */
  #search(s: number): void {
    const pass = this.#passOf[s]!;
    const lo = (s - this.#first[pass]!) * this.#passes[pass]!.blockSize;
    this.#searching[s] = 1;
    this.#state[4 * s + LO] = lo;
    this.#state[4 * s + HI] = Math.min(this.#length[pass]!, lo + this.#passes[pass]!.blockSize);
    this.#parity[s] = this.#top[s]!;
    this.#state[4 * s + CHECKED] = -1;
    this.#pending[this.#pendingCount++] = s;
  }

  #stillOdd(s: number): boolean {
    // No bit of the block flipped since the range was last known odd: it still is.
    if (this.#state[4 * s + CHECKED] === this.#state[4 * s + FLIPS]) return true;
    if (this.#views[this.#passOf[s]!]!.range(this.#state[4 * s + LO]!, this.#state[4 * s + HI]!) === this.#parity[s])
      return false;
    this.#state[4 * s + CHECKED] = this.#state[4 * s + FLIPS]!;
    return true;
  }

  /** One binary-search step with the responder's parity of the first half. */
  #step(s: number, firstHalf: number): void {
    if (!this.#stillOdd(s)) return this.#finish(s);
    const lo = this.#state[4 * s + LO]!;
    const mid = lo + ((this.#state[4 * s + HI]! - lo) >>> 1);
    if (this.#views[this.#passOf[s]!]!.range(lo, mid) !== firstHalf) {
      this.#state[4 * s + HI] = mid;
      this.#parity[s] = firstHalf;
    } else {
      this.#state[4 * s + LO] = mid;
      this.#parity[s] = this.#parity[s]! ^ firstHalf;
    }
    // The half kept is odd too (its parity and the other half's add up to the whole's).
    this.#state[4 * s + CHECKED] = this.#state[4 * s + FLIPS]!;
    this.#pending[this.#pendingCount++] = s;
  }

  /** The bit at the search's lo is wrong: flip it everywhere, and reopen every block it makes odd. */
  #fix(s: number): void {
    const position = this.#orders[this.#passOf[s]!]!.toKey(this.#state[4 * s + LO]!);
    // Padding is the same at both ends: only answers that contradict each other lead there.
    if (position >= this.#n) throw new RangeError('Cascade answers are inconsistent');
    flipBit(this.#key, position);
    this.corrected++;
    for (let pass = 0; pass <= this.#opened; pass++) {
      const inPass = this.#orders[pass]!.toPass(position);
      this.#views[pass]!.flip(inPass);
      const size = this.#size[pass]!;
      let block = Math.floor(inPass * this.#perSize[pass]!);
      // 1/size is rounded: the quotient may be one off.
      if (block * size > inPass) block--;
      else if ((block + 1) * size <= inPass) block++;
      const t = this.#first[pass]! + block;
      this.#state[4 * t + FLIPS]!++;
      this.#odd[t]! ^= 1;
      if (this.#odd[t] && !this.#searching[t]) this.#search(t);
    }
    this.#finish(s);
  }

  #finish(s: number): void {
    this.#searching[s] = 0;
    // Another correction may have left the block odd again while this search ran.
    if (this.#odd[s]) this.#search(s);
  }

  wipe(): void {
    for (const v of this.#views) v.wipe();
    for (const a of [this.#odd, this.#state, this.#parity, this.#pending, this.#spare, this.#asked]) a.fill(0);
  }
}

/** Parity of a whole bit string (used by tests and checks). */
export const parityOf = (b: Bits): number => parity32(b.reduce((x, w) => x ^ w, 0));
