import { newBits, popcount32, wordsFor, type Bits } from './bits.js';

/**
 * Word-at-a-time bit gathering for sifting: the bits of a string where a mask is set, packed in
 * order (x86's PEXT), through a 64 KiB table of every byte of mask against every byte of data.
 * A pass over n bits costs n/8 lookups instead of a branch per bit.
 */

/** PEXT8[mask << 8 | data]: the bits of `data` where `mask` is set, packed low. */
const PEXT8 = new Uint8Array(65536);
/** Set bits of each byte. */
const POP8 = new Uint8Array(256);
for (let mask = 0; mask < 256; mask++) {
  POP8[mask] = popcount32(mask);
  for (let data = 0; data < 256; data++) {
    let v = 0;
    for (let b = 0, k = 0; b < 8; b++) if ((mask >>> b) & 1) v |= ((data >>> b) & 1) << k++;
    PEXT8[(mask << 8) | data] = v;
  }
}

/** SELECT8[byte << 3 | r]: the position of the r-th (from 0) set bit of the byte. */
const SELECT8 = new Uint8Array(2048);
for (let byte = 0; byte < 256; byte++) {
  for (let b = 0, r = 0; b < 8; b++) if ((byte >>> b) & 1) SELECT8[(byte << 3) | r++] = b;
}

/** The position of the r-th (from 0) set bit of x; r must be below its number of set bits. */
export function selectBit(x: number, r: number): number {
  let shift = 0;
  for (let c = POP8[x & 255]!; r >= c; c = POP8[(x >>> shift) & 255]!) {
    r -= c;
    shift += 8;
  }
  return shift + SELECT8[(((x >>> shift) & 255) << 3) | r]!;
}

/** The mask of the first n bits within word w of a string of n bits. */
export const tailMask = (n: number, w: number): number =>
  w === wordsFor(n) - 1 && n & 31 ? 0xffffffff >>> (32 - (n & 31)) : 0xffffffff;

/** Set bits among the first n. */
export function countOnes(b: Bits, n: number): number {
  const words = wordsFor(n);
  let count = 0;
  for (let w = 0; w < words - 1; w++) count += popcount32(b[w]!);
  if (words > 0) count += popcount32(b[words - 1]! & tailMask(n, words - 1));
  return count;
}

/** The bits of `src` at the set bits of `mask` (among the first n), in order; `count` of them. */
export function compress(src: Bits, mask: Bits, n: number): { bits: Bits; count: number } {
  const words = wordsFor(n);
  const count = countOnes(mask, n);
  const out = newBits(count);
  let acc = 0; // the output word being filled, `fill` bits of it so far
  let fill = 0;
  let o = 0;
  for (let w = 0; w < words; w++) {
    const m = w === words - 1 ? mask[w]! & tailMask(n, w) : mask[w]!;
    if (m === 0) continue;
    const d = src[w]!;
    // The word's gathered bits, a byte at a time, then appended with one test.
    const m0 = m & 255;
    const m1 = (m >>> 8) & 255;
    const m2 = (m >>> 16) & 255;
    const m3 = m >>> 24;
    const c0 = POP8[m0]!;
    const c01 = c0 + POP8[m1]!;
    const c012 = c01 + POP8[m2]!;
    const c = c012 + POP8[m3]!;
    const r =
      PEXT8[(m0 << 8) | (d & 255)]! |
      (PEXT8[(m1 << 8) | ((d >>> 8) & 255)]! << c0) |
      (PEXT8[(m2 << 8) | ((d >>> 16) & 255)]! << c01) |
      (PEXT8[(m3 << 8) | (d >>> 24)]! << c012);
    acc |= r << fill;
    fill += c;
    if (fill >= 32) {
      out[o++] = acc;
      fill -= 32;
      acc = fill === 0 ? 0 : r >>> (c - fill);
    }
  }
  if (fill > 0) out[o] = acc;
  return { bits: out, count };
}
