import { popcount32, wipe, type Bits } from '../../qkd/bits.js';
import { compress, countOnes, tailMask } from '../../qkd/compress.js';
import { estimate } from '../../qkd/estimation.js';
import { keepMatching, signalMask, splitBits, splitMasks, type Kept } from '../../qkd/sifting.js';
import type { Transmitter } from '../../physics/transmitter.js';
import type { QkdSettings } from './settings.js';
import * as wire from './wire.js';

/**
 * Bob's clicks, decoded: reused from frame to frame (they are public, and used only inside
 * siftAtAlice), since a fresh 18 MB array a frame costs more in page faults than decoding it.
 */
let clickScratch = new Uint32Array(0);

/** Alice's side of sifting for one frame: what she keeps, splits and sends. */
export interface AliceSift {
  readonly kept: Kept;
  readonly split: ReturnType<typeof splitMasks>;
  /** The raw key and the disclosed bits (both wiped by the caller). */
  readonly key: { bits: Bits; count: number };
  readonly disclosed: { bits: Bits; count: number };
  readonly clicksByClass: [number, number, number];
  /** The kept clicks' intensity classes, as they go to Bob. */
  readonly classes: Buffer;
}

/**
 * Alice's choices for the `m` pulses Bob detected (a malformed list of them throws before she
 * looks anything up), the basis-matched ones, and their split into sample and key from the
 * public `sampleSeed`.
 */
export function siftAtAlice(
  tx: Transmitter,
  frame: number,
  indices: unknown,
  bobBases: Bits,
  o: { m: number; N: number; sampleSeed: number; fraction: number },
): AliceSift {
  if (clickScratch.length < o.m) clickScratch = new Uint32Array(o.m);
  const clicks = wire.decodeIndices(indices, o.m, o.N, 'indices', clickScratch.subarray(0, o.m));
  const alice = tx.choicesAt(frame, clicks);
  const kept = keepMatching(alice, bobBases, o.m);
  wipe(alice.bits);
  const split = splitMasks(signalMask(kept.decoys, kept.vacuums, kept.count), kept.count, o.sampleSeed, o.fraction);
  const { key, disclosed } = splitBits(kept.bits, kept.count, split);
  wipe(kept.bits);
  const classes = wire.encodeClasses(kept.decoys, kept.vacuums, kept.count);
  return { kept, split, key, disclosed, clicksByClass: alice.counts, classes };
}

/** Parameter estimation from the errors, by class, between Alice's and Bob's disclosed bits. */
export function estimateAtAlice(sift: AliceSift, bobDisclosed: Bits, s: QkdSettings): ReturnType<typeof estimate> {
  const { kept, split, disclosed: d } = sift;
  const decoys = compress(kept.decoys, split.disclosed, kept.count).bits;
  const vacuums = compress(kept.vacuums, split.disclosed, kept.count).bits;
  const errors: [number, number, number] = [0, 0, 0];
  for (let w = 0; w < d.bits.length; w++) {
    const diff = (d.bits[w]! ^ bobDisclosed[w]!) & tailMask(d.count, w);
    errors[1] += popcount32(diff & decoys[w]!);
    errors[2] += popcount32(diff & vacuums[w]!);
    errors[0] += popcount32(diff & ~(decoys[w]! | vacuums[w]!));
  }
  wipe(d.bits);
  const compared: [number, number, number] = [
    split.sampled,
    countOnes(kept.decoys, kept.count),
    countOnes(kept.vacuums, kept.count),
  ];
  const p = s.physics;
  const N = s.framePulses;
  const pulses: [number, number, number] = [N * p.pSignal, N * p.pDecoy, N * (1 - p.pSignal - p.pDecoy)];
  return estimate({ pulses, clicks: sift.clicksByClass, compared, errors }, { mu: p.mu, nu: p.nu, nSigma: s.nSigma });
}
