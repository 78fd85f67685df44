import { mix32, Prng } from '../qkd/prng.js';
import { arrivalProbabilities, DECOY, SIGNAL, VACUUM, type LinkPhysics } from './link-model.js';

/** Photons that reach Bob's detector: pulse index and polarisation (bit | basis << 1). */
export interface Arrivals {
  readonly indices: Uint32Array;
  readonly states: Uint8Array;
}

/** What Alice chose for one pulse. */
export interface PulseChoice {
  readonly intensity: number;
  readonly bit: number;
  readonly basis: number;
}

const TWO_24 = 16777216;

/**
 * Alice's transmitter and the fibre up to Bob's detector. Her choices per pulse come from a keyed
 * hash of (frame, pulse) so that she can look up any pulse Bob names without storing all of them.
 * Loss does not depend on polarisation, so it is drawn here, and only pulses with a photon that
 * reaches Bob's detector cross to Bob (folding his detector efficiency into the channel). An
 * intercept-resend eavesdropper, when configured, sits at Alice's output: she measures the pulses
 * she attacks in a random basis and resends what she saw at the same intensity, so only the
 * errors betray her.
 */
export class Transmitter {
  readonly #physics: LinkPhysics;
  readonly #keys: Uint32Array;
  readonly #arrival: [number, number, number];

  constructor(physics: LinkPhysics, seed: Uint8Array) {
    this.#physics = physics;
    const rng = Prng.fromBytes(seed, 0x416c6963);
    this.#keys = Uint32Array.from([rng.u32(), rng.u32(), rng.u32(), rng.u32()]);
    this.#arrival = arrivalProbabilities(physics);
  }

  /** Alice's choice packed as bit | basis << 1 | intensity << 2, without an object per pulse. */
  packed(frame: number, index: number): number {
    const h = mix32(frame, index, this.#keys[0]!);
    const u = (h >>> 8) / TWO_24;
    const p = this.#physics;
    const intensity = u < p.pSignal ? SIGNAL : u < p.pSignal + p.pDecoy ? DECOY : VACUUM;
    return (h & 3) | (intensity << 2);
  }

  pulse(frame: number, index: number): PulseChoice {
    const h = mix32(frame, index, this.#keys[0]!);
    const u = (h >>> 8) / TWO_24;
    const p = this.#physics;
    const intensity = u < p.pSignal ? SIGNAL : u < p.pSignal + p.pDecoy ? DECOY : VACUUM;
    return { intensity, bit: h & 1, basis: (h >>> 1) & 1 };
  }

  /** Whether the eavesdropper attacks this pulse, and the basis and bit she would resend. */
  attack(frame: number, index: number): { attacked: boolean; basis: number; guess: number } {
    const h = mix32(frame, index, this.#keys[1]!);
    return { attacked: (h >>> 8) / TWO_24 < this.#physics.eveFraction, basis: h & 1, guess: (h >>> 1) & 1 };
  }

  /** The photons of frame `frame` (`pulses` pulses) that reach Bob's detector. */
  emit(frame: number, pulses: number): Arrivals {
    const rng = new Prng([this.#keys[2]!, this.#keys[3]!, frame, 0x66696272]);
    const pMax = Math.max(...this.#arrival);
    let indices = new Uint32Array(Math.max(1024, Math.ceil(pulses * pMax * 1.2)));
    let states = new Uint8Array(indices.length);
    let count = 0;
    const eve = this.#physics.eveFraction > 0;
    // Candidates at the highest arrival probability, thinned to each pulse's own (exact).
    for (let i = rng.geometric(pMax); i < pulses; i += 1 + rng.geometric(pMax)) {
      const choice = this.pulse(frame, i);
      const p = this.#arrival[choice.intensity]!;
      if (p < pMax && !rng.chance(p / pMax)) continue;
      let { bit, basis } = choice;
      if (eve) {
        const e = this.attack(frame, i);
        if (e.attacked) {
          bit = e.basis === basis ? bit : e.guess;
          basis = e.basis;
        }
      }
      if (count === indices.length) {
        indices = grow(indices);
        states = grow(states);
      }
      indices[count] = i;
      states[count++] = bit | (basis << 1);
    }
    return { indices: indices.slice(0, count), states: states.slice(0, count) };
  }
}

function grow<T extends Uint32Array | Uint8Array>(a: T): T {
  const b = new (a.constructor as new (n: number) => T)(a.length * 2);
  b.set(a);
  return b;
}
