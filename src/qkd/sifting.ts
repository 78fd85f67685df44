import { getBit, type Bits } from './bits.js';
import { Prng } from './prng.js';

/**
 * Sifting and the choice of what to disclose. After Bob announces his detections and bases, Alice
 * announces which bases matched and each kept pulse's intensity class. Decoy and vacuum pulses
 * are disclosed whole (they estimate the channel); a random sample of the signal pulses is
 * disclosed to estimate the QBER; the remaining signal pulses are the raw key.
 */

/** Clicks whose basis matched: positions into the click list. */
export function matchingClicks(aliceBases: Bits, bobBases: Bits, clicks: number): Uint32Array {
  const kept: number[] = [];
  for (let j = 0; j < clicks; j++) if (getBit(aliceBases, j) === getBit(bobBases, j)) kept.push(j);
  return Uint32Array.from(kept);
}

export interface Partition {
  /** Positions into the kept list whose bits are disclosed (all non-signal, sampled signal). */
  readonly disclosed: Uint32Array;
  /** Positions into the kept list that form the raw key. */
  readonly key: Uint32Array;
}

/** Splits the kept clicks; both ends compute the same split from the same public seed. */
export function partition(classes: Uint8Array, sampleSeed: number, fraction: number, signal = 0): Partition {
  const rng = new Prng([sampleSeed, 0x73616d70, classes.length, 1]);
  const disclosed: number[] = [];
  const key: number[] = [];
  for (let i = 0; i < classes.length; i++) {
    if (classes[i] !== signal || rng.float() < fraction) disclosed.push(i);
    else key.push(i);
  }
  return { disclosed: Uint32Array.from(disclosed), key: Uint32Array.from(key) };
}
