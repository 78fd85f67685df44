import { flipBit, parity32, type Bits } from './bits.js';
import { ParityIndex } from './parity-index.js';
import { checkPass, inverseMod, shuffled, type PassSpec } from './cascade-plan.js';

/**
 * Cascade between a corrector (this end changes its key) and a responder (the other end, whose
 * key is the reference; it only answers parity questions). Questions travel in batches: every
 * binary search under way asks its next half in the same message, so a pass costs about
 * log2(block size) round trips, not one per error.
 *
 * A question is a triple (pass, lo, hi): the parity of bits [lo, hi) of the key in that pass's
 * order. Every answer is one disclosed bit; `disclosed` counts them.
 */

/** The responder's side: answers from its fixed key. */
export class CascadeResponder {
  readonly #key: Bits;
  readonly #n: number;
  readonly #passes: PassSpec[] = [];
  readonly #views: Array<ParityIndex | undefined> = [];
  disclosed = 0;

  constructor(key: Bits, n: number) {
    this.#key = key;
    this.#n = n;
  }

  addPasses(passes: readonly PassSpec[]): void {
    for (const p of passes) checkPass(p, this.#n);
    this.#passes.push(...passes);
  }

  answer(questions: Uint32Array): Uint8Array {
    if (questions.length % 3 !== 0) throw new RangeError('questions come in triples');
    const count = questions.length / 3;
    const out = new Uint8Array((count + 7) >>> 3);
    for (let i = 0; i < count; i++) {
      const pass = questions[3 * i]!;
      const lo = questions[3 * i + 1]!;
      const hi = questions[3 * i + 2]!;
      const spec = this.#passes[pass];
      if (!spec || hi > this.#n || lo >= hi) throw new RangeError('question outside the key');
      const view = (this.#views[pass] ??= new ParityIndex(shuffled(this.#key, this.#n, spec), spec.blockSize));
      if (view.range(lo, hi)) out[i >>> 3]! |= 1 << (i & 7);
    }
    this.disclosed += count;
    return out;
  }

  wipe(): void {
    for (const v of this.#views) v?.wipe();
  }
}

interface Search {
  readonly pass: number;
  readonly block: number;
  lo: number;
  hi: number;
  /** The responder's parity of [lo, hi). */
  parity: number;
  /** `fixes` when [lo, hi) was last known odd here: if no bit flipped since, it still is. */
  checked: number;
}

/** The corrector's side: a state machine fed with answers, producing the next questions. */
export class CascadeCorrector {
  readonly #key: Bits;
  readonly #n: number;
  readonly #passes: readonly PassSpec[];
  readonly #inverse: number[];
  readonly #views: Array<ParityIndex | undefined> = [];
  /** Responder's top-level parity per block, per pass. */
  readonly #top: Uint8Array[] = [];
  /** Whether each block's parity currently differs from the responder's, per opened pass. */
  readonly #odd: Uint8Array[] = [];
  /** Whether a search of each block is under way, per opened pass (a byte per block, no Set). */
  readonly #searching: Uint8Array[] = [];
  /** Per pass, b and a⁻¹ mod n: where a key position sits in that pass's order. */
  readonly #offset: Float64Array;
  #opened = -1;
  #pending: Search[] = [];
  #asked: Search[] = [];
  disclosed = 0;
  corrected = 0;
  rounds = 0;

  constructor(key: Bits, n: number, passes: readonly PassSpec[]) {
    this.#key = key;
    this.#n = n;
    this.#passes = passes;
    this.#inverse = passes.map((p) => inverseMod(p.a, n));
    this.#offset = Float64Array.from(passes, (p) => p.b);
  }

  get done(): boolean {
    return this.#opened === this.#passes.length - 1 && this.#pending.length === 0 && this.#asked.length === 0;
  }

  /** The first batch: every top-level block of every pass (the responder's key never changes). */
  firstQuestions(): Uint32Array {
    const n = this.#n;
    const count = this.#passes.reduce((c, p) => c + Math.ceil(n / p.blockSize), 0);
    const out = new Uint32Array(3 * count);
    let at = 0;
    for (let pass = 0; pass < this.#passes.length; pass++) {
      const size = this.#passes[pass]!.blockSize;
      for (let lo = 0; lo < n; lo += size) {
        out[at++] = pass;
        out[at++] = lo;
        out[at++] = Math.min(n, lo + size);
      }
    }
    return out;
  }

  /** Takes the answers to the last batch; returns the next one, or null when Cascade is finished. */
  onAnswers(answers: Uint8Array): Uint32Array | null {
    const bit = (i: number) => (answers[i >>> 3]! >>> (i & 7)) & 1;
    this.rounds++;
    if (this.#top.length === 0) {
      let i = 0;
      for (const p of this.#passes) {
        const blocks = Math.ceil(this.#n / p.blockSize);
        const top = new Uint8Array(blocks);
        for (let b = 0; b < blocks; b++) top[b] = bit(i++);
        this.#top.push(top);
      }
      this.disclosed += i;
      this.#checkLength(answers, i);
      this.#openNext();
    } else {
      this.#checkLength(answers, this.#asked.length);
      this.disclosed += this.#asked.length;
      const asked = this.#asked;
      this.#asked = [];
      for (let i = 0; i < asked.length; i++) this.#step(asked[i]!, bit(i));
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
      this.#pending = [];
      for (const s of ready) {
        if (!this.#stillOdd(s)) this.#finish(s);
        else if (s.hi - s.lo === 1) this.#fix(s);
        else this.#asked.push(s);
      }
      if (this.#pending.length > 0) continue;
      if (this.#asked.length > 0) break;
      if (this.#opened === this.#passes.length - 1) return null;
      // From the third pass on (whole-key-sized blocks in the improved variants, few errors
      // left) the remaining passes run together: a few duplicate parities instead of ~log2(n)
      // round trips per pass.
      do this.#openNext();
      while (this.#opened >= 2 && this.#opened < this.#passes.length - 1);
    }
    const asked = this.#asked;
    const out = new Uint32Array(asked.length * 3);
    for (let i = 0, at = 0; i < asked.length; i++) {
      const s = asked[i]!;
      out[at++] = s.pass;
      out[at++] = s.lo;
      out[at++] = s.lo + ((s.hi - s.lo) >>> 1);
    }
    return out;
  }

  #openNext(): void {
    const pass = ++this.#opened;
    const spec = this.#passes[pass]!;
    const view = new ParityIndex(shuffled(this.#key, this.#n, spec), spec.blockSize);
    this.#views[pass] = view;
    const top = this.#top[pass]!;
    const odd = new Uint8Array(top.length);
    this.#searching[pass] = new Uint8Array(top.length);
    this.#odd[pass] = odd;
    const size = spec.blockSize;
    for (let b = 0, lo = 0; b < top.length; b++, lo += size) {
      odd[b] = view.range(lo, Math.min(this.#n, lo + size)) ^ top[b]!;
      if (odd[b]) this.#search(pass, b);
    }
  }

  #search(pass: number, block: number): void {
    const size = this.#passes[pass]!.blockSize;
    const lo = block * size;
    this.#searching[pass]![block] = 1;
    this.#pending.push({
      pass,
      block,
      lo,
      hi: Math.min(this.#n, lo + size),
      parity: this.#top[pass]![block]!,
      checked: -1,
    });
  }

  #stillOdd(s: Search): boolean {
    if (s.checked === this.corrected) return true;
    if (this.#views[s.pass]!.range(s.lo, s.hi) === s.parity) return false;
    s.checked = this.corrected;
    return true;
  }

  /** One binary-search step with the responder's parity of the first half. */
  #step(s: Search, firstHalf: number): void {
    if (!this.#stillOdd(s)) return this.#finish(s);
    const mid = s.lo + ((s.hi - s.lo) >>> 1);
    if (this.#views[s.pass]!.range(s.lo, mid) !== firstHalf) {
      s.hi = mid;
      s.parity = firstHalf;
    } else {
      s.lo = mid;
      s.parity ^= firstHalf;
    }
    // The half kept is odd too (its parity and the other half's add up to the whole's).
    s.checked = this.corrected;
    this.#pending.push(s);
  }

  /** The bit at s.lo is wrong: flip it everywhere, and reopen every block it makes odd. */
  #fix(s: Search): void {
    const spec = this.#passes[s.pass]!;
    const position = (spec.a * s.lo + spec.b) % this.#n;
    flipBit(this.#key, position);
    this.corrected++;
    const n = this.#n;
    for (let pass = 0; pass <= this.#opened; pass++) {
      let d = position - this.#offset[pass]!;
      if (d < 0) d += n;
      const inPass = (d * this.#inverse[pass]!) % n;
      this.#views[pass]!.flip(inPass);
      const block = Math.floor(inPass / this.#passes[pass]!.blockSize);
      const odd = this.#odd[pass]!;
      odd[block]! ^= 1;
      if (odd[block] && !this.#searching[pass]![block]) this.#search(pass, block);
    }
    this.#finish(s);
  }

  #finish(s: Search): void {
    this.#searching[s.pass]![s.block] = 0;
    // Another correction may have left the block odd again while this search ran.
    if (this.#odd[s.pass]![s.block]) this.#search(s.pass, s.block);
  }

  wipe(): void {
    for (const v of this.#views) v?.wipe();
  }
}

/** Parity of a whole bit string (used by tests and checks). */
export const parityOf = (b: Bits): number => parity32(b.reduce((x, w) => x ^ w, 0));
