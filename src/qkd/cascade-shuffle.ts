import { wordsFor, type Bits } from './bits.js';
import { kernels } from './kernels.js';
import { Prng } from './prng.js';

/**
 * Cascade's shuffles. A shuffled pass reads the key, zero-padded to L = 1024·⌈n/1024⌉ bits (W = L/32
 * words; both ends pad alike, so padding never differs and no search ends on it), in an order built
 * from word operations only, with two random permutations P and Q of the W words (Fisher–Yates,
 * expanded at both ends from the pass's public seed):
 *
 *   1. row r of tile t (t a multiple of 32) is key word P[t + r], rotated by ρ(t + r) bits;
 *   2. each tile of 32 × 32 bits is transposed (bit j of row r becomes bit r of row j);
 *   3. row j of tile t, rotated by σ(t + j) bits, becomes word Q[t + j] of the pass's order.
 *
 * The 32 bits of a key word land in 32 random pass words, and a pass word's 32 bits come from 32
 * random key words; ρ and σ (hashes of the row and column under keys drawn with P and Q) move every
 * bit to a random place in its word, so that bits at the same place in different key words do not
 * meet again and again in the short blocks of every pass (without them, 6% of 10^4-bit frames at 10%
 * QBER kept errors after the original Cascade, against none with random shuffles). A view costs a
 * few word operations per 32 bits instead of a scattered read per bit (docs/qkd-link.md, "Cascade's
 * implementation"). Affine maps of the words instead of P and Q were tried too: their regularity
 * (errors at equal distances stay at equal distances) left 60% more errors after the second pass.
 */
export interface Shuffle {
  /** Four 32-bit words. */
  readonly seed: readonly number[];
}

/** Bits of a shuffled pass's order: the key's length rounded up to whole tiles. */
export const paddedLength = (n: number): number => 1024 * Math.ceil(n / 1024);

/** Whether s is a well-formed shuffle (its seed four 32-bit words). */
export const validShuffle = (s: Shuffle): boolean =>
  Array.isArray(s.seed) && s.seed.length === 4 && s.seed.every((x) => Number.isInteger(x) && x >= 0 && x < 2 ** 32);

/**
 * A random permutation of [0, size): Fisher–Yates with multiply-shift draws from xorshift128
 * seeded from `rng` (each draw biased by at most size/2^32, under 2^-11: harmless for a shuffle,
 * which needs no secrecy). A C kernel, like the views: a frame has 18 of each.
 */
const permutation = (size: number, rng: Prng): Int32Array =>
  kernels().permutation(size, Uint32Array.of(rng.u32(), rng.u32(), rng.u32(), rng.u32()));

function inverse(p: Int32Array): Int32Array {
  const out = new Int32Array(p.length);
  for (let i = 0; i < p.length; i++) out[p[i]!] = i;
  return out;
}

/** A pass's order: its view of a key, and positions between the two (both ways). */
export class PassOrder {
  /** Bits in the pass's order. */
  readonly length: number;
  readonly #n: number;
  readonly #rows: Int32Array | undefined;
  readonly #columns: Int32Array | undefined;
  /** Keys of the rotations of rows and of columns. */
  readonly #rowKey: number = 0;
  readonly #columnKey: number = 0;
  #rowOf: Int32Array | undefined;
  #columnOf: Int32Array | undefined;

  /** Without a shuffle, the key's own order. */
  constructor(n: number, shuffle?: Shuffle) {
    this.#n = n;
    this.length = shuffle ? paddedLength(n) : n;
    if (!shuffle) return;
    const rng = new Prng(shuffle.seed);
    this.#rows = permutation(this.length >>> 5, rng);
    this.#columns = permutation(this.length >>> 5, rng);
    this.#rowKey = rng.u32() | 1;
    this.#columnKey = rng.u32() | 1;
  }

  /** What makes the order, for the corrector's kernel (undefined: the key's own order). */
  get tables(): { rows: Int32Array; columns: Int32Array; rowKey: number; columnKey: number } | undefined {
    if (!this.#rows || !this.#columns) return undefined;
    return { rows: this.#rows, columns: this.#columns, rowKey: this.#rowKey >>> 0, columnKey: this.#columnKey >>> 0 };
  }

  /** How far row or column i of the tiles is rotated (0 to 31: a hash of i under the key). */
  static #turn(i: number, key: number): number {
    return Math.imul((i ^ key) + 0x7f4a7c15, 0x9e3779b1) >>> 27;
  }

  /** The key position of position q of the pass. */
  toKey(q: number): number {
    if (!this.#rows) return q;
    this.#columnOf ??= inverse(this.#columns!);
    const v = this.#columnOf[q >>> 5]!;
    const i = (v & ~31) + ((q - PassOrder.#turn(v, this.#columnKey)) & 31);
    return 32 * this.#rows[i]! + ((v - PassOrder.#turn(i, this.#rowKey)) & 31);
  }

  /** The pass position of key position p. */
  toPass(p: number): number {
    if (!this.#rows) return p;
    this.#rowOf ??= inverse(this.#rows);
    const i = this.#rowOf[p >>> 5]!;
    const v = (i & ~31) + ((p + PassOrder.#turn(i, this.#rowKey)) & 31);
    return 32 * this.#columns![v]! + ((i + PassOrder.#turn(v, this.#columnKey)) & 31);
  }

  /**
   * The key (n bits) in this order: bit q of the result is key bit toKey(q), and 0 for padding.
   * A fresh array: the caller may change or wipe it.
   */
  view(key: Bits): Uint32Array {
    const n = this.#n;
    const words = wordsFor(n);
    const tail = n & 31 ? 0xffffffff >>> (32 - (n & 31)) : 0xffffffff;
    const rows = this.#rows;
    const columns = this.#columns;
    if (!rows || !columns) {
      const out = key.slice(0, words);
      out[words - 1]! &= tail;
      return out;
    }
    return kernels().view(key, n, rows, columns, this.#rowKey >>> 0, this.#columnKey >>> 0);
  }
}
