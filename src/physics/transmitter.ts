import { kernels } from '../qkd/kernels.js';
import { mix32, Prng } from '../qkd/prng.js';
import { emptyChoices, type ClickChoices } from '../qkd/sifting.js';
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
  /** The thresholds of `pulse` on 24-bit integers (the same comparisons, exactly). */
  readonly #signalBelow: number;
  readonly #decoyBelow: number;

  constructor(physics: LinkPhysics, seed: Uint8Array) {
    this.#physics = physics;
    const rng = Prng.fromBytes(seed, 0x416c6963);
    this.#keys = Uint32Array.from([rng.u32(), rng.u32(), rng.u32(), rng.u32()]);
    this.#arrival = arrivalProbabilities(physics);
    this.#signalBelow = physics.pSignal * TWO_24;
    this.#decoyBelow = (physics.pSignal + physics.pDecoy) * TWO_24;
  }

  /** Alice's choice packed as bit | basis << 1 | intensity << 2, without an object per pulse. */
  packed(frame: number, index: number): number {
    const h = mix32(frame, index, this.#keys[0]!);
    const u = h >>> 8;
    const intensity = u < this.#signalBelow ? SIGNAL : u < this.#decoyBelow ? DECOY : VACUUM;
    return (h & 3) | (intensity << 2);
  }

  /**
   * Alice's choices for the pulses `indices` (those of `packed`, exactly): bases, bits, and the
   * decoy and vacuum classes as masks. A C kernel (kernels.ts): millions of clicks per frame.
   */
  choicesAt(frame: number, indices: Uint32Array): ClickChoices {
    const { bases, bits, decoys, vacuums } = emptyChoices(indices.length);
    // mix32(frame, index, key) with its first half fixed per frame; for integers u,
    // u < t exactly when u < ceil(t).
    const counts = kernels().choices(
      Math.imul(frame ^ this.#keys[0]!, 0x9e3779b1) >>> 0,
      Math.ceil(this.#signalBelow),
      Math.ceil(this.#decoyBelow),
      indices,
      bases,
      bits,
      decoys,
      vacuums,
    );
    return { bases, bits, decoys, vacuums, counts };
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
    const pMax = this.#arrival.reduce((m, p) => (p > m ? p : m), -Infinity);
    let indices = new Uint32Array(Math.max(1024, Math.ceil(pulses * pMax * 1.2)));
    let states = new Uint8Array(indices.length);
    let count = 0;
    const eve = this.#physics.eveFraction > 0;
    const keep = this.#arrival.map((p) => (p / pMax) * 4294967296);
    // Candidates at the highest arrival probability, thinned to each pulse's own (exact).
    const skip = 1 / Math.log1p(-pMax);
    for (let i = rng.geometricOf(skip); i < pulses; i += 1 + rng.geometricOf(skip)) {
      const c = this.packed(frame, i);
      const p = keep[c >>> 2]!;
      if (p < 4294967296 && !(rng.u32() < p)) continue;
      let state = c & 3;
      if (eve) {
        const e = this.attack(frame, i);
        // She resends her guess in her basis; a matching basis keeps Alice's bit.
        if (e.attacked) state = (e.basis === state >>> 1 ? state & 1 : e.guess) | (e.basis << 1);
      }
      if (count === indices.length) {
        indices = grow(indices);
        states = grow(states);
      }
      indices[count] = i;
      states[count++] = state;
    }
    return { indices: indices.slice(0, count), states: states.slice(0, count) };
  }
}

function grow<T extends Uint32Array | Uint8Array>(a: T): T {
  const b = new (a.constructor as new (n: number) => T)(a.length * 2);
  b.set(a);
  return b;
}
