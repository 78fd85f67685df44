import type { Bits } from './bits.js';
import { FixedParities } from './parity-index.js';
import { checkPass, repeated, shuffled, type PassSpec } from './cascade-plan.js';

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
  #twice: Int32Array | undefined;
  disclosed = 0;

  constructor(key: Bits, n: number) {
    this.#key = key;
    this.#n = n;
  }

  addPasses(passes: readonly PassSpec[]): void {
    for (const p of passes) checkPass(p, this.#n);
    this.#passes.push(...passes);
    this.#views.push(...passes.map(() => null));
  }

  answer(questions: Uint32Array): Uint8Array {
    if (questions.length % 3 !== 0) throw new RangeError('questions come in triples');
    const count = questions.length / 3;
    const out = new Uint8Array((count + 7) >>> 3);
    const n = this.#n;
    const passes = this.#passes.length;
    const views = this.#views;
    for (let i = 0, at = 0; i < count; i++, at += 3) {
      const pass = questions[at]!;
      const lo = questions[at + 1]!;
      const hi = questions[at + 2]!;
      if (pass >= passes || hi > n || lo >= hi) throw new RangeError('question outside the key');
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
    const n = this.#n;
    const count = this.#passes.reduce((c, p) => c + Math.ceil(n / p.blockSize), 0);
    const out = new Uint8Array((count + 7) >>> 3);
    let i = 0;
    this.#passes.forEach((p, pass) => {
      const view = this.#views[pass] ?? this.#view(pass);
      for (let lo = 0; lo < n; lo += p.blockSize, i++) {
        if (view.range(lo, Math.min(n, lo + p.blockSize))) out[i >>> 3]! |= 1 << (i & 7);
      }
    });
    this.disclosed += count;
    return out;
  }

  /** Views made elsewhere (responderViews, on another thread), one per pass. */
  useViews(prefixes: readonly Uint32Array[]): void {
    if (prefixes.length !== this.#passes.length) throw new RangeError('one view per pass');
    prefixes.forEach((p, pass) => (this.#views[pass] = FixedParities.fromPrefix(p)));
  }

  #view(pass: number): FixedParities {
    // The key repeated, made once for all passes (this key never changes).
    this.#twice ??= repeated(this.#key, this.#n);
    const view = new FixedParities(shuffled(this.#key, this.#n, this.#passes[pass]!, this.#twice));
    this.#views[pass] = view;
    return view;
  }

  wipe(): void {
    for (const v of this.#views) v?.wipe();
    this.#twice?.fill(0);
  }
}

/**
 * The responder's views of every pass as one array of prefix words (FixedParities), pass after
 * pass, each `wordsFor(n) + 2` long: made in one piece so that it can move between threads.
 */
export function responderViews(key: Bits, n: number, passes: readonly PassSpec[]): Uint32Array {
  for (const p of passes) checkPass(p, n);
  const twice = repeated(key, n);
  const size = ((n + 31) >>> 5) + 2;
  const out = new Uint32Array(size * passes.length);
  passes.forEach((p, i) =>
    FixedParities.prefixInto(shuffled(key, n, p, twice), out.subarray(i * size, (i + 1) * size)),
  );
  twice.fill(0);
  return out;
}
