import { paddedLength, validShuffle, type Shuffle } from './cascade-shuffle.js';
import type { Prng } from './prng.js';

/**
 * Which Cascade: the original of Brassard and Salvail (1993), and the improved block sizes studied
 * by Martinez-Mateo et al. (2015, "Demystifying the information reconciliation protocol Cascade"):
 * Yan et al.'s (their "opt. (2)") and their own power-of-two proposal without sub-block reuse
 * (block sizes of "opt. (7)").
 */
export const CASCADE_VARIANTS = ['original', 'yanetal', 'pow2'] as const;
export type CascadeVariant = (typeof CASCADE_VARIANTS)[number];

/** One pass: its top-level block size and, for all passes but the first, its shuffle. */
export interface PassSpec {
  readonly blockSize: number;
  readonly shuffle?: Shuffle;
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

/** Bits in a pass's order: the key's, or the padded length when shuffled. */
export const passLength = (p: PassSpec, n: number): number => (p.shuffle ? paddedLength(n) : n);

/**
 * The passes of one Cascade run: the first keeps the key's order, later ones shuffle it
 * (cascade-shuffle.ts: a random order made of word operations). Shuffled
 * passes run over the padded length, so their block sizes are reckoned on it.
 */
export function planPasses(variant: CascadeVariant, qber: number, n: number, rng: Prng): PassSpec[] {
  if (n < 2) throw new RangeError('Cascade needs at least 2 bits');
  if (n >= 2 ** 26) throw new RangeError('Cascade frames are limited to 2^26 bits');
  const [first] = blockSizes(variant, qber, n);
  return [
    { blockSize: first! },
    ...blockSizes(variant, qber, paddedLength(n))
      .slice(1)
      .map((blockSize) => ({ blockSize, shuffle: { seed: [rng.u32(), rng.u32(), rng.u32(), rng.u32()] } })),
  ];
}

/** Checks a pass received from the peer: nothing it says may index outside the key. */
export function checkPass(p: PassSpec, n: number): void {
  // A bound on the memory a peer's frame may take.
  if (!(n >= 2 && n < 2 ** 26)) throw new RangeError('Cascade frames are limited to 2^26 bits');
  const length = passLength(p, n);
  const ok =
    Number.isInteger(p.blockSize) &&
    p.blockSize >= 1 &&
    p.blockSize <= length &&
    (p.shuffle === undefined || validShuffle(p.shuffle));
  if (!ok) throw new RangeError('invalid Cascade pass');
}
