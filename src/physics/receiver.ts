import { newBits, type Bits } from '../qkd/bits.js';
import { Prng } from '../qkd/prng.js';
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
 * Bob's receiver: a random basis per pulse, misalignment errors, and dark counts (yield Y0 per
 * pulse, a random outcome). It sees only the photons that crossed the fibre, never Alice's choices.
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
    const max = arrivals.indices.length + Math.ceil(pulses * y0 * 3 + 256);
    const indices = new Uint32Array(max);
    const bases = newBits(max);
    const bits = newBits(max);
    let count = 0;
    let dark = rng.geometric(y0);
    let a = 0;
    while (a < arrivals.indices.length || dark < pulses) {
      const nextArrival = a < arrivals.indices.length ? arrivals.indices[a]! : Infinity;
      if (count === max) break;
      const index = Math.min(nextArrival, dark);
      const basis = rng.u32() & 1;
      let bit: number;
      if (nextArrival === index && dark !== index) {
        const state = arrivals.states[a]!;
        bit = basis === state >>> 1 ? (state & 1) ^ (rng.chance(e) ? 1 : 0) : rng.u32() & 1;
      } else {
        // A dark count, alone or with a photon: the outcome is random.
        bit = rng.u32() & 1;
      }
      if (nextArrival === index) a++;
      if (dark === index) dark += 1 + rng.geometric(y0);
      indices[count] = index;
      if (basis) bases[count >>> 5]! |= 1 << (count & 31);
      if (bit) bits[count >>> 5]! |= 1 << (count & 31);
      count++;
    }
    return { count, indices: indices.slice(0, count), bases, bits };
  }
}
