import { newBits, popcount32, type Bits } from './bits.js';
import { compress, selectBit, tailMask } from './compress.js';
import { Prng } from './prng.js';

/**
 * Sifting and the choice of what to disclose. After Bob announces his detections and bases, Alice
 * announces which bases matched and each kept pulse's intensity class. Decoy and vacuum pulses
 * are disclosed whole (they estimate the channel); a random sample of the signal pulses is
 * disclosed to estimate the QBER; the remaining signal pulses are the raw key.
 *
 * Everything here works on bit strings a word at a time: per-click facts (basis, bit, class) are
 * masks, and the kept, disclosed and key bits are gathered from them with `compress`.
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

/** Alice's choices for Bob's clicks, one bit per click in each string (classes as two masks). */
export interface ClickChoices {
  readonly bases: Bits;
  readonly bits: Bits;
  readonly decoys: Bits;
  readonly vacuums: Bits;
  /** Clicks of each intensity class (signal, decoy, vacuum). */
  readonly counts: [number, number, number];
}

/** Choices for m clicks, all zero, to be filled (Transmitter.choicesAt). */
export const emptyChoices = (m: number): ClickChoices => ({
  bases: newBits(m),
  bits: newBits(m),
  decoys: newBits(m),
  vacuums: newBits(m),
  counts: [0, 0, 0],
});

/** The clicks whose bases matched, at Alice's end: their bits and their classes as masks. */
export interface Kept {
  readonly match: Bits;
  readonly count: number;
  readonly bits: Bits;
  readonly decoys: Bits;
  readonly vacuums: Bits;
}

/** Alice's side of sifting: which of the `m` clicks' bases match Bob's, and what they keep. */
export function keepMatching(alice: ClickChoices, bobBases: Bits, m: number): Kept {
  const match = new Uint32Array(alice.bases.length);
  for (let w = 0; w < match.length; w++) match[w] = ~(alice.bases[w]! ^ bobBases[w]!) & tailMask(m, w);
  const bits = compress(alice.bits, match, m);
  return {
    match,
    count: bits.count,
    bits: bits.bits,
    decoys: compress(alice.decoys, match, m).bits,
    vacuums: compress(alice.vacuums, match, m).bits,
  };
}

/** The signal pulses among n kept ones: neither decoy nor vacuum. */
export function signalMask(decoys: Bits, vacuums: Bits, n: number): Bits {
  const signal = newBits(n);
  for (let w = 0; w < signal.length; w++) signal[w] = ~(decoys[w]! | vacuums[w]!) & tailMask(n, w);
  return signal;
}

/**
 * The split of the n kept clicks, which both ends compute alike from the public seed: `key` marks
 * the raw key (signal pulses not sampled), `disclosed` the rest. Each signal pulse is sampled with
 * probability `fraction`, drawn as geometric gaps between sampled ones (the distribution of a coin
 * per pulse, for a twentieth of the random numbers).
 */
export function splitMasks(
  signal: Bits,
  n: number,
  sampleSeed: number,
  fraction: number,
): { key: Bits; disclosed: Bits; sampled: number } {
  const rng = new Prng([sampleSeed, 0x73616d70, n, 2]);
  const skip = 1 / Math.log1p(-fraction);
  const key = newBits(n);
  const disclosed = newBits(n);
  let next = rng.geometricOf(skip); // ordinal among the signal pulses of the next sampled one
  let base = 0; // ordinal of the first signal pulse of word w
  let sampled = 0;
  for (let w = 0; w < key.length; w++) {
    const s = signal[w]! & tailMask(n, w);
    const c = popcount32(s);
    let chosen = 0;
    while (next < base + c) {
      chosen |= 1 << selectBit(s, next - base);
      sampled++;
      next += 1 + rng.geometricOf(skip);
    }
    base += c;
    key[w] = s & ~chosen;
    disclosed[w] = ~key[w]! & tailMask(n, w);
  }
  return { key, disclosed, sampled };
}

/** The kept bits `bits` (n of them) split by `splitMasks` into the raw key and the disclosed bits. */
export function splitBits(bits: Bits, n: number, split: { key: Bits; disclosed: Bits }) {
  return { key: compress(bits, split.key, n), disclosed: compress(bits, split.disclosed, n) };
}
