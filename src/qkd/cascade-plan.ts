import type { Prng } from './prng.js';

/**
 * Which Cascade: the original of Brassard and Salvail (1993), and the improved block sizes studied
 * by Martinez-Mateo et al. (2015, "Demystifying the information reconciliation protocol Cascade"):
 * Yan et al.'s (their "opt. (2)") and their own power-of-two proposal without sub-block reuse
 * (block sizes of "opt. (7)").
 */
export const CASCADE_VARIANTS = ['original', 'yanetal', 'pow2'] as const;
export type CascadeVariant = (typeof CASCADE_VARIANTS)[number];

/** One pass: its top-level block size and its shuffle, position q ↦ key bit (a·q + b) mod n. */
export interface PassSpec {
  readonly blockSize: number;
  readonly a: number;
  readonly b: number;
}

const MIN_QBER = 1e-3;

/** Block sizes of each pass for an estimated QBER and n bits. */
export function blockSizes(variant: CascadeVariant, qber: number, n: number): number[] {
  const q = Math.max(MIN_QBER, qber);
  const half = Math.max(2, Math.floor(n / 2));
  const cap = (k: number) => Math.max(2, Math.min(k, half));
  switch (variant) {
    case 'original': {
      const k1 = Math.ceil(0.73 / q);
      return [k1, 2 * k1, 4 * k1, 8 * k1].map(cap);
    }
    case 'yanetal': {
      const k1 = Math.ceil(0.8 / q);
      return [k1, 5 * k1, ...Array<number>(8).fill(half)].map(cap);
    }
    case 'pow2': {
      const k1 = 2 ** Math.ceil(Math.log2(1 / q));
      return [k1, 4 * k1, ...Array<number>(12).fill(half)].map(cap);
    }
  }
}

const gcd = (x: number, y: number): number => (y === 0 ? x : gcd(y, x % y));

/**
 * The passes of one Cascade run: the first keeps the key's order, later ones shuffle it with an
 * affine map (cheap to apply and to invert; errors close together end up far apart).
 */
export function planPasses(variant: CascadeVariant, qber: number, n: number, rng: Prng): PassSpec[] {
  if (n < 2) throw new RangeError('Cascade needs at least 2 bits');
  if (n >= 2 ** 26) throw new RangeError('Cascade frames are limited to 2^26 bits');
  return blockSizes(variant, qber, n).map((blockSize, i) => {
    if (i === 0) return { blockSize, a: 1, b: 0 };
    let a = 1 + rng.below(n - 1);
    while (gcd(a, n) !== 1) a = 1 + rng.below(n - 1);
    return { blockSize, a, b: rng.below(n) };
  });
}

/** Checks a pass received from the peer: nothing it says may index outside the key. */
export function checkPass(p: PassSpec, n: number): void {
  // The shuffles' arithmetic (mulMod, the doubled key) is exact only below this.
  if (!(n >= 2 && n < 2 ** 26)) throw new RangeError('Cascade frames are limited to 2^26 bits');
  const ok =
    Number.isInteger(p.blockSize) &&
    p.blockSize >= 1 &&
    p.blockSize <= n &&
    Number.isInteger(p.a) &&
    p.a >= 1 &&
    p.a < Math.max(2, n) &&
    gcd(p.a, n) === 1 &&
    Number.isInteger(p.b) &&
    p.b >= 0 &&
    p.b < n;
  if (!ok) throw new RangeError('invalid Cascade pass');
}

/**
 * The key in a pass's order: bit q of the result is key bit (a·q + b) mod n. `twice`, the key
 * repeated (see `repeated`), may be given when several passes are made from the same key.
 */
export function shuffled(key: Uint32Array, n: number, p: PassSpec, twice?: Int32Array): Uint32Array {
  if (p.a === 1 && p.b === 0) return key.slice();
  if (!twice) {
    const own = repeated(key, n);
    const out = shuffled(key, n, p, own);
    own.fill(0);
    return out;
  }
  const out = new Uint32Array(key.length);
  // Where the 32 bits of an output word sit relative to its first: independent of each other, so
  // the loads of one word need not wait for one another (a running index would chain them).
  const offset = new Int32Array(32);
  for (let j = 0; j < 32; j++) offset[j] = (j * p.a) % n;
  const step = (32 * p.a) % n;
  const next = (from: number) => {
    const s = from + step - n;
    return s + ((s >> 31) & n);
  };
  let start = p.b;
  const full = n >>> 5;
  let w = 0;
  // Two words at a time: each offset read serves both.
  for (; w + 1 < full; w += 2) {
    const second = next(start);
    let x = 0;
    let y = 0;
    for (let j = 0; j < 32; j += 4) {
      const o0 = offset[j]!;
      const o1 = offset[j + 1]!;
      const o2 = offset[j + 2]!;
      const o3 = offset[j + 3]!;
      x |= fourBits(twice, start, o0, o1, o2, o3) << j;
      y |= fourBits(twice, second, o0, o1, o2, o3) << j;
    }
    out[w] = x;
    out[w + 1] = y;
    start = next(second);
  }
  for (; w <= full; w++) {
    const bits = w < full ? 32 : n & 31;
    let word = 0;
    for (let j = 0; j < bits; j++) {
      const q = start + offset[j]!;
      word |= ((twice[q >>> 5]! >>> q) & 1) << j;
    }
    if (bits) out[w] = word;
    start = next(start);
  }
  return out;
}

/** Bits s + o0, …, s + o3 of `bits`, as the low four bits of the result. */
function fourBits(bits: Int32Array, s: number, o0: number, o1: number, o2: number, o3: number): number {
  const q0 = s + o0;
  const q1 = s + o1;
  const q2 = s + o2;
  const q3 = s + o3;
  return (
    ((bits[q0 >>> 5]! >>> q0) & 1) |
    (((bits[q1 >>> 5]! >>> q1) & 1) << 1) |
    (((bits[q2 >>> 5]! >>> q2) & 1) << 2) |
    (((bits[q3 >>> 5]! >>> q3) & 1) << 3)
  );
}

/**
 * The first n bits of `key`, then the same n bits again (2n bits; signed words read faster): a
 * position a·j mod n plus a start below n needs no reduction mod n there.
 */
export function repeated(key: Uint32Array, n: number): Int32Array {
  const out = new Int32Array(((2 * n + 31) >>> 5) + 1);
  const words = (n + 31) >>> 5;
  const at = n >>> 5;
  const shift = n & 31;
  out.set(key.subarray(0, words));
  if (shift === 0) {
    out.set(key.subarray(0, words), at);
    return out;
  }
  out[at] = (key[at]! & ((1 << shift) - 1)) | (key[0]! << shift);
  for (let i = 1; i < words; i++) out[at + i] = (key[i - 1]! >>> (32 - shift)) | (key[i]! << shift);
  out[at + words] = key[words - 1]! >>> (32 - shift);
  return out;
}

/** Modular inverse of a mod n (a, n coprime). */
export function inverseMod(a: number, n: number): number {
  let [r0, r1] = [n, a % n];
  let [t0, t1] = [0, 1];
  while (r1 !== 0) {
    const q = Math.floor(r0 / r1);
    [r0, r1] = [r1, r0 - q * r1];
    [t0, t1] = [t1, t0 - q * t1];
  }
  return ((t0 % n) + n) % n;
}
