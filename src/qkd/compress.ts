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
    if (m === 0xffffffff) {
      out[o++] = acc | (d << fill);
      acc = fill === 0 ? 0 : d >>> (32 - fill);
      continue;
    }
    for (let s = 0; s < 32; s += 8) {
      const mb = (m >>> s) & 255;
      const c = POP8[mb]!;
      if (c === 0) continue;
      const v = PEXT8[(mb << 8) | ((d >>> s) & 255)]!;
      acc |= v << fill;
      fill += c;
      if (fill >= 32) {
        out[o++] = acc;
        fill -= 32;
        acc = v >>> (c - fill);
      }
    }
  }
  if (fill > 0) out[o] = acc;
  return { bits: out, count };
}
