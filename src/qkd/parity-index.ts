import { parity32, type Bits } from './bits.js';

/**
 * A bit string with fast range parities: a Fenwick tree of XORs over its words makes the parity
 * of any range O(log n) and a bit flip O(log n). Cascade asks parities of ranges up to half the
 * key; scanning them word by word would cost O(n) each.
 */
/** Ranges shorter than this many words are scanned; only longer ones use the tree. */
const SCAN_WORDS = 24;

export class ParityIndex {
  readonly bits: Bits;
  readonly #tree: Uint32Array;

  /**
   * `maxRange`: the longest range (bits) ever asked. When every range is short enough to scan
   * (Cascade's first passes), no tree is kept, and a flip costs one word.
   */
  constructor(bits: Bits, maxRange = Infinity) {
    this.bits = bits;
    if (maxRange <= (SCAN_WORDS - 1) * 32) {
      this.#tree = new Uint32Array(0);
      return;
    }
    const t = new Uint32Array(bits.length + 1);
    t.set(bits, 1);
    for (let i = 1; i <= bits.length; i++) {
      const j = i + (i & -i);
      if (j <= bits.length) t[j]! ^= t[i]!;
    }
    this.#tree = t;
  }

  flip(i: number): void {
    const d = 1 << (i & 31);
    this.bits[i >>> 5]! ^= d;
    for (let w = (i >>> 5) + 1; w < this.#tree.length; w += w & -w) this.#tree[w]! ^= d;
  }

  /** XOR of words [0, w). */
  #prefix(w: number): number {
    let x = 0;
    for (; w > 0; w -= w & -w) x ^= this.#tree[w]!;
    return x;
  }

  /** Parity of bits [lo, hi). */
  range(lo: number, hi: number): number {
    if (hi <= lo) return 0;
    const b = this.bits;
    const wl = lo >>> 5;
    const wh = (hi - 1) >>> 5;
    const maskLo = (0xffffffff << (lo & 31)) >>> 0;
    const maskHi = 0xffffffff >>> (31 - ((hi - 1) & 31));
    if (wl === wh) return parity32(b[wl]! & maskLo & maskHi);
    let x = (b[wl]! & maskLo) ^ (b[wh]! & maskHi);
    if (wh - wl < SCAN_WORDS || this.#tree.length === 0) {
      for (let w = wl + 1; w < wh; w++) x ^= b[w]!;
    } else {
      x ^= this.#prefix(wh) ^ this.#prefix(wl + 1);
    }
    return parity32(x);
  }

  wipe(): void {
    this.bits.fill(0);
    this.#tree.fill(0);
  }
}

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
