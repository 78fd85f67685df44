import type { Bits } from './bits.js';
import { FixedParities } from './parity-index.js';
import { checkPass, passLength, type PassSpec } from './cascade-plan.js';
import { PassOrder } from './cascade-shuffle.js';

/*
 * Cascade's responder (cascade.ts describes the protocol): the end whose key is the reference,
 * which only answers parity questions and counts every one it answers as disclosed.
 */

/** The responder's side: answers from its fixed key. */
export class CascadeResponder {
  readonly #key: Bits;
  readonly #n: number;
  readonly #passes: PassSpec[] = [];
  /** Each pass's view: given by useViews, or made at its first question (null until then). */
  readonly #views: Array<FixedParities | null> = [];
  /** Per pass, the bits of its order (the key's length, or padded when shuffled). */
  readonly #lengths: number[] = [];
  disclosed = 0;

  constructor(key: Bits, n: number) {
    this.#key = key;
    this.#n = n;
  }

  addPasses(passes: readonly PassSpec[]): void {
    for (const p of passes) checkPass(p, this.#n);
    this.#passes.push(...passes);
    this.#views.push(...passes.map(() => null));
    this.#lengths.push(...passes.map((p) => passLength(p, this.#n)));
  }

  answer(questions: Uint32Array): Uint8Array {
    if (questions.length % 3 !== 0) throw new RangeError('questions come in triples');
    const count = questions.length / 3;
    const out = new Uint8Array((count + 7) >>> 3);
    const passes = this.#passes.length;
    const views = this.#views;
    for (let i = 0, at = 0; i < count; i++, at += 3) {
      const pass = questions[at]!;
      const lo = questions[at + 1]!;
      const hi = questions[at + 2]!;
      if (pass >= passes || hi > this.#lengths[pass]! || lo >= hi) throw new RangeError('question outside the key');
      const view = views[pass] ?? this.#view(pass);
      if (view.range(lo, hi)) out[i >>> 3]! |= 1 << (i & 7);
    }
    this.disclosed += count;
    return out;
  }

  /**
   * The parities of every top-level block of every pass, in order: the answers to the corrector's
   * first batch (which it need not send: it is implied by the passes).
   */
  answerTopLevel(): Uint8Array {
    const lengths = this.#lengths;
    const count = this.#passes.reduce((c, p, pass) => c + Math.ceil(lengths[pass]! / p.blockSize), 0);
    const out = new Uint8Array((count + 7) >>> 3);
    let i = 0;
    this.#passes.forEach((p, pass) => {
      const view = this.#views[pass] ?? this.#view(pass);
      const length = lengths[pass]!;
      for (let lo = 0; lo < length; lo += p.blockSize, i++) {
        if (view.range(lo, Math.min(length, lo + p.blockSize))) out[i >>> 3]! |= 1 << (i & 7);
      }
    });
    this.disclosed += count;
    return out;
  }

  /** The views of every pass, made elsewhere in one piece (responderViews, on another thread). */
  useViews(all: Uint32Array): void {
    let at = 0;
    this.#lengths.forEach((length, pass) => {
      const size = prefixWords(length);
      if (at + size > all.length) throw new RangeError('one view per pass');
      this.#views[pass] = FixedParities.fromPrefix(all.subarray(at, (at += size)));
    });
    if (at !== all.length) throw new RangeError('one view per pass');
  }

  #view(pass: number): FixedParities {
    const view = new FixedParities(new PassOrder(this.#n, this.#passes[pass]!.shuffle).view(this.#key));
    this.#views[pass] = view;
    return view;
  }

  wipe(): void {
    for (const v of this.#views) v?.wipe();
  }
}

/** Words of a pass's prefix view (FixedParities) of `length` bits. */
const prefixWords = (length: number): number => ((length + 31) >>> 5) + 2;

/**
 * The responder's views of every pass as one array of prefix words (FixedParities), pass after
 * pass, each its length's words + 2: made in one piece so that it can move between threads.
 */
export function responderViews(key: Bits, n: number, passes: readonly PassSpec[]): Uint32Array {
  for (const p of passes) checkPass(p, n);
  const sizes = passes.map((p) => prefixWords(passLength(p, n)));
  const out = new Uint32Array(sizes.reduce((a, b) => a + b, 0));
  let at = 0;
  passes.forEach((p, i) =>
    FixedParities.prefixInto(new PassOrder(n, p.shuffle).view(key), out.subarray(at, (at += sizes[i]!))),
  );
  return out;
}
