import { newBits, popcount32, wordsFor, type Bits } from './bits.js';
import { Prng } from './prng.js';

/**
 * Sifting and the choice of what to disclose. After Bob announces his detections and bases, Alice
 * announces which bases matched and each kept pulse's intensity class. Decoy and vacuum pulses
 * are disclosed whole (they estimate the channel); a random sample of the signal pulses is
 * disclosed to estimate the QBER; the remaining signal pulses are the raw key.
 */

/** Clicks whose basis matched: positions into the click list. */
export function matchingClicks(aliceBases: Bits, bobBases: Bits, clicks: number): Uint32Array {
  const kept = new Uint32Array(clicks);
  let k = 0;
  for (let w = 0; w < aliceBases.length; w++) {
    let same = ~(aliceBases[w]! ^ bobBases[w]!);
    if (w === aliceBases.length - 1 && clicks & 31) same &= 0xffffffff >>> (32 - (clicks & 31));
    while (same !== 0) {
      const bit = 31 - Math.clz32(same & -same);
      kept[k++] = w * 32 + bit;
      same &= same - 1;
    }
  }
  return kept.slice(0, k);
}

/** Which of the first `clicks` bases agree, as a bit string. */
export function matchBits(aliceBases: Bits, bobBases: Bits, clicks: number): Bits {
  const match = new Uint32Array(aliceBases.length);
  for (let w = 0; w < match.length; w++) match[w] = ~(aliceBases[w]! ^ bobBases[w]!);
  if (clicks & 31) match[match.length - 1]! &= 0xffffffff >>> (32 - (clicks & 31));
  return match;
}

/** Positions of the set bits among the first n. */
export const onesOf = (b: Bits, n: number): Uint32Array =>
  matchingClicks(b, new Uint32Array(b.length).fill(0xffffffff), n);

export interface Partition {
  /** Positions into the kept list whose bits are disclosed (all non-signal, sampled signal). */
  readonly disclosed: Uint32Array;
  /** Positions into the kept list that form the raw key. */
  readonly key: Uint32Array;
}

/**
 * Splits the kept clicks; both ends compute the same split from the same public seed. Each signal
 * bit is sampled with probability `fraction`, drawn as geometric gaps between sampled ones (the
 * same distribution as a coin per bit, for a twentieth of the random numbers).
 */
export function partition(classes: Uint8Array, sampleSeed: number, fraction: number, signal = 0): Partition {
  const rng = new Prng([sampleSeed, 0x73616d70, classes.length, 2]);
  const skip = 1 / Math.log1p(-fraction);
  const disclosed = new Uint32Array(classes.length);
  const key = new Uint32Array(classes.length);
  let [d, k] = [0, 0];
  let ordinal = 0;
  let next = rng.geometricOf(skip);
  for (let i = 0; i < classes.length; i++) {
    if (classes[i] !== signal) disclosed[d++] = i;
    else if (ordinal++ === next) {
      disclosed[d++] = i;
      next = ordinal + rng.geometricOf(skip);
    } else key[k++] = i;
  }
  return { disclosed: disclosed.slice(0, d), key: key.slice(0, k) };
}

/**
 * The clicks whose bases matched, in one pass over the match words: their positions, their bits
 * (from `bits`, one per click) and, when given one per click, their intensity classes.
 */
export function keepMatching(
  match: Bits,
  clicks: number,
  bits: Bits,
  classesOfClicks?: Uint8Array,
): { kept: Uint32Array; keptBits: Bits; classes: Uint8Array } {
  const words = wordsFor(clicks);
  const tail = clicks & 31 ? 0xffffffff >>> (32 - (clicks & 31)) : 0xffffffff;
  let count = 0;
  for (let w = 0; w < words; w++) count += popcount32(w === words - 1 ? match[w]! & tail : match[w]!);
  const kept = new Uint32Array(count);
  const keptBits = newBits(count);
  const classes = new Uint8Array(classesOfClicks ? count : 0);
  let k = 0;
  let out = 0; // the kept bits' word being filled
  for (let w = 0; w < words; w++) {
    let m = w === words - 1 ? match[w]! & tail : match[w]!;
    const b = bits[w]!;
    while (m !== 0) {
      const low = m & -m;
      const pos = w * 32 + 31 - Math.clz32(low);
      kept[k] = pos;
      if (classesOfClicks) classes[k] = classesOfClicks[pos]!;
      if (b & low) out |= 1 << (k & 31);
      k++;
      if ((k & 31) === 0) {
        keptBits[(k >>> 5) - 1] = out;
        out = 0;
      }
      m ^= low;
    }
    if (k & 31) keptBits[k >>> 5] = out;
  }
  return { kept, keptBits, classes };
}

/**
 * `partition` and the bits of each part in one pass: the disclosed positions and their bits, and
 * the raw key (the signal bits not sampled), as both ends compute them from the public seed.
 */
export function splitKept(
  bits: Bits,
  classes: Uint8Array,
  sampleSeed: number,
  fraction: number,
  signal = 0,
): { disclosed: Uint32Array; disclosedBits: Bits; key: Bits; n: number } {
  const rng = new Prng([sampleSeed, 0x73616d70, classes.length, 2]);
  const skip = 1 / Math.log1p(-fraction);
  const disclosed = new Uint32Array(classes.length);
  const disclosedBits = newBits(classes.length);
  const key = newBits(classes.length);
  let [d, k] = [0, 0];
  let ordinal = 0;
  let next = rng.geometricOf(skip);
  for (let i = 0; i < classes.length; i++) {
    const bit = (bits[i >>> 5]! >>> (i & 31)) & 1;
    if (classes[i] !== signal || ordinal++ === next) {
      if (classes[i] === signal) next = ordinal + rng.geometricOf(skip);
      if (bit) disclosedBits[d >>> 5]! |= 1 << (d & 31);
      disclosed[d++] = i;
    } else {
      if (bit) key[k >>> 5]! |= 1 << (k & 31);
      k++;
    }
  }
  return {
    disclosed: disclosed.slice(0, d),
    disclosedBits: disclosedBits.slice(0, wordsFor(d)),
    key: key.slice(0, wordsFor(k)),
    n: k,
  };
}
