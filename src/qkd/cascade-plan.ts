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

/** The key in a pass's order: bit q of the result is key bit (a·q + b) mod n. */
export function shuffled(key: Uint32Array, n: number, p: PassSpec): Uint32Array {
  if (p.a === 1 && p.b === 0) return key.slice();
  const out = new Uint32Array(key.length);
  const { a } = p;
  let idx = p.b;
  // A word at a time, kept in a register: the reads are scattered, the writes need not be.
  const full = n >>> 5;
  for (let w = 0; w < full; w++) {
    let word = 0;
    for (let j = 0; j < 32; j++) {
      word |= ((key[idx >>> 5]! >>> (idx & 31)) & 1) << j;
      idx += a;
      if (idx >= n) idx -= n;
    }
    out[w] = word;
  }
  let word = 0;
  for (let j = 0; j < (n & 31); j++) {
    word |= ((key[idx >>> 5]! >>> (idx & 31)) & 1) << j;
    idx += a;
    if (idx >= n) idx -= n;
  }
  if (n & 31) out[full] = word;
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
