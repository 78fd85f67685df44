import { parity32, type Bits } from './bits.js';

/**
 * A bit string that never changes, with O(1) range parities: word w holds the XOR of the string's
 * words before w (a prefix), so a range costs four reads however long it is. The responder's
 * views are of this kind; the bits themselves are not kept (word w is prefix[w] ^ prefix[w + 1]).
 */
export class FixedParities {
  #prefix: Uint32Array;

  /** Takes over `bits` (and wipes it). */
  constructor(bits: Bits) {
    this.#prefix = FixedParities.prefixInto(bits, new Uint32Array(bits.length + 2));
  }

  /** A view from the prefix words that prefixInto made (taken over, not copied). */
  static fromPrefix(prefix: Uint32Array): FixedParities {
    const view = new FixedParities(new Uint32Array(0));
    view.#prefix = prefix;
    return view;
  }

  /** Writes the prefix words of `bits` to `out` (bits.length + 2 words) and wipes `bits`. */
  static prefixInto(bits: Bits, out: Uint32Array): Uint32Array {
    // One word past the end too: a range ending on the last word boundary reads it (masked away).
    let x = 0;
    for (let w = 0; w < bits.length; w++) {
      out[w] = x;
      x ^= bits[w]!;
    }
    out[bits.length] = x;
    out[bits.length + 1] = x;
    bits.fill(0);
    return out;
  }

  /** XOR of bits [0, i) folded into a word (only its parity matters). */
  #upTo(i: number): number {
    const p = this.#prefix;
    const w = i >>> 5;
    const below = (1 << (i & 31)) - 1;
    return p[w]! ^ ((p[w]! ^ p[w + 1]!) & below);
  }

  /** Parity of bits [lo, hi) (lo ≤ hi ≤ length in bits). */
  range(lo: number, hi: number): number {
    return parity32(this.#upTo(hi) ^ this.#upTo(lo));
  }

  wipe(): void {
    this.#prefix.fill(0);
  }
}
