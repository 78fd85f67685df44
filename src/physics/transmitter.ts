import { popcount32 } from '../qkd/bits.js';
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
   * Alice's choices for the pulses `indices` (those of `packed`, exactly), a word of 32 clicks at a
   * time in registers: bases, bits, and the decoy and vacuum classes as masks.
   */
  choicesAt(frame: number, indices: Uint32Array): ClickChoices {
    const choices = emptyChoices(indices.length);
    this.choicesInto(frame, indices, choices, 0);
    return choices;
  }

  /**
   * `choicesAt` for a run of clicks from click `first` on (a multiple of 32), written into
   * `out`'s strings and added to its counts: Bob's clicks can be looked up as they are decoded.
   */
  choicesInto(frame: number, indices: Uint32Array, out: ClickChoices, first: number): void {
    if (first & 31) throw new RangeError('runs of clicks start at a multiple of 32');
    const m = indices.length;
    const { bases, bits, decoys, vacuums } = out;
    // mix32(frame, index, key) with its first half fixed per frame; for integers u,
    // u < t exactly when u < ceil(t), and (u − t) >>> 31 is that comparison without a branch.
    const firstHalf = Math.imul(frame ^ this.#keys[0]!, 0x9e3779b1);
    const signalBelow = Math.ceil(this.#signalBelow);
    const decoyBelow = Math.ceil(this.#decoyBelow);
    let nDecoy = 0;
    let nVacuum = 0;
    for (let w = first >>> 5, j = 0; j < m; w++) {
      const end = Math.min(m, j + 32);
      let basisWord = 0;
      let bitWord = 0;
      let decoyWord = 0;
      let vacuumWord = 0;
      for (let k = 0; j < end; j++, k++) {
        // `| 0` keeps the sum in 32-bit integers (the same value modulo 2^32 that imul takes).
        let h = firstHalf ^ Math.imul(((indices[j]! | 0) + 0x7f4a7c15) | 0, 0x85ebca77);
        h ^= h >>> 16;
        h = Math.imul(h, 0x85ebca6b);
        h ^= h >>> 13;
        h = Math.imul(h, 0xc2b2ae35);
        h ^= h >>> 16;
        const u = h >>> 8;
        const isSignal = (u - signalBelow) >>> 31;
        const notVacuum = (u - decoyBelow) >>> 31;
        bitWord |= (h & 1) << k;
        basisWord |= ((h >>> 1) & 1) << k;
        decoyWord |= (notVacuum ^ isSignal) << k;
        vacuumWord |= (notVacuum ^ 1) << k;
      }
      bases[w] = basisWord;
      bits[w] = bitWord;
      decoys[w] = decoyWord;
      vacuums[w] = vacuumWord;
      nDecoy += popcount32(decoyWord);
      nVacuum += popcount32(vacuumWord);
    }
    out.counts[0] += m - nDecoy - nVacuum;
    out.counts[1] += nDecoy;
    out.counts[2] += nVacuum;
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
