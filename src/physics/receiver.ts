import { newBits, type Bits } from '../qkd/bits.js';
import { Prng } from '../qkd/prng.js';
import { deadTimePulses } from './detector.js';
import type { LinkPhysics } from './link-model.js';
import type { Arrivals } from './transmitter.js';

/** Bob's detection events of one frame, in pulse order. */
export interface Clicks {
  readonly count: number;
  readonly indices: Uint32Array;
  readonly bases: Bits;
  readonly bits: Bits;
}

/**
 * Bob's receiver: a random basis per pulse, misalignment errors, dark counts (yield Y0 per pulse, a
 * random outcome), and two detectors, one per bit value, each blind for its dead time after a click
 * and afterpulsing once after it with probability p_ap (detector.ts). It sees only the photons that
 * crossed the fibre, never Alice's choices.
 */
export class Receiver {
  readonly #physics: LinkPhysics;
  readonly #keys: [number, number];

  constructor(physics: LinkPhysics, seed: Uint8Array) {
    this.#physics = physics;
    const rng = Prng.fromBytes(seed, 0x426f62);
    this.#keys = [rng.u32(), rng.u32()];
  }

  detect(frame: number, pulses: number, arrivals: Arrivals): Clicks {
    const rng = new Prng([this.#keys[0], this.#keys[1], frame, 0x64657465]);
    const y0 = this.#physics.darkCountProbability;
    const e = this.#physics.misalignment;
    const dead = deadTimePulses(this.#physics);
    const pAfter = this.#physics.afterpulseProbability;
    let indices: Uint32Array = new Uint32Array(arrivals.indices.length + Math.ceil(pulses * y0 * 3 + 256));
    let bases: Uint32Array = newBits(indices.length);
    let bits: Uint32Array = newBits(indices.length);
    let count = 0;
    let dark = rng.geometric(y0);
    let a = 0;
    // Per detector (bit value): the last pulse it is blind for, and its pending afterpulse.
    const blindUntil = [-1, -1];
    const afterpulse = [Infinity, Infinity];
    for (;;) {
      const nextArrival = a < arrivals.indices.length ? arrivals.indices[a]! : Infinity;
      const index = Math.min(nextArrival, dark, afterpulse[0]!, afterpulse[1]!);
      if (index >= pulses) break;
      const photon = nextArrival === index;
      const sources = +photon + +(dark === index) + +(afterpulse[0] === index) + +(afterpulse[1] === index);
      const basis = rng.u32() & 1;
      let bit: number;
      if (photon && sources === 1) {
        const state = arrivals.states[a]!;
        bit = basis === state >>> 1 ? (state & 1) ^ (rng.chance(e) ? 1 : 0) : rng.u32() & 1;
      } else if (sources === 1 && dark !== index) {
        // An afterpulse: the detector that fires again gives its own bit.
        bit = afterpulse[0] === index ? 0 : 1;
      } else {
        // A dark count, or several sources in one gate (a double click): the outcome is random.
        bit = rng.u32() & 1;
      }
      if (photon) a++;
      if (dark === index) dark += 1 + rng.geometric(y0);
      if (afterpulse[0] === index) afterpulse[0] = Infinity;
      if (afterpulse[1] === index) afterpulse[1] = Infinity;
      // Non-paralyzable: a blind detector neither clicks nor extends its dead time.
      if (index <= blindUntil[bit]!) continue;
      blindUntil[bit] = index + dead;
      if (pAfter > 0 && rng.chance(pAfter)) afterpulse[bit] = index + dead + 1;
      if (count === indices.length) {
        indices = grown(indices, indices.length * 2);
        bases = grown(bases, bases.length * 2);
        bits = grown(bits, bits.length * 2);
      }
      indices[count] = index;
      if (basis) bases[count >>> 5]! |= 1 << (count & 31);
      if (bit) bits[count >>> 5]! |= 1 << (count & 31);
      count++;
    }
    return { count, indices: indices.slice(0, count), bases, bits };
  }
}

function grown(a: Uint32Array, length: number): Uint32Array {
  const b = new Uint32Array(length);
  b.set(a);
  return b;
}
