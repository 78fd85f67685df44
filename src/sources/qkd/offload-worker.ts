import { move, transferableSymbol, valueSymbol } from 'piscina';
import { Transmitter } from '../../physics/transmitter.js';
import type { LinkPhysics } from '../../physics/link-model.js';
import { siftAtAlice } from './alice-sifting.js';
import { responderViews } from '../../qkd/cascade.js';
import type { PassSpec } from '../../qkd/cascade-plan.js';
import { wipe, type Bits } from '../../qkd/bits.js';
import { secretKey } from './frame-hashes.js';

/**
 * The steps of a frame that offload.ts runs on a worker thread: pure functions of typed arrays.
 * Each wipes the key material it was given and its own byte copies, writes the milliseconds it
 * took to `ms[0]` (shared memory) and moves its result back (not a copy).
 */
interface Task {
  key: Bits;
  n: number;
  ms: Float64Array;
}

function timed(task: Task, f: () => Uint8Array | Uint32Array): unknown {
  const t = performance.now();
  try {
    return move(f());
  } finally {
    wipe(task.key);
    task.ms[0] = performance.now() - t;
  }
}

export const amplification = (t: Task & { seed: Uint8Array; outBits: number }): unknown =>
  timed(t, () => secretKey(t.key, t.n, t.seed, t.outBits));

export const cascade = (t: Task & { passes: PassSpec[] }): unknown =>
  timed(t, () => responderViews(t.key, t.n, t.passes));

/**
 * Alice's sifting of one frame (siftAtAlice), with her transmitter made from its physics and seed
 * (cheap: it only draws its keys). The result's arrays all move back (none is left here); her
 * choices are wiped inside siftAtAlice, the seed's copy here too. Bad input comes back as the
 * reason it was refused (an error's status does not cross threads).
 */
export function sifting(t: {
  physics: LinkPhysics;
  seed: Uint8Array;
  frame: number;
  indices: Uint8Array;
  bobBases: Uint32Array;
  o: { m: number; N: number; sampleSeed: number; fraction: number };
  ms: Float64Array;
}): unknown {
  const start = performance.now();
  try {
    const tx = new Transmitter(t.physics, t.seed);
    const sift = siftAtAlice(tx, t.frame, t.indices, t.bobBases, t.o);
    const { kept, split } = sift;
    const arrays = [
      kept.match,
      kept.decoys,
      kept.vacuums,
      split.key,
      split.disclosed,
      sift.key.bits,
      sift.disclosed.bits,
    ];
    // Only arrays that own their buffer can move; any other would be copied.
    const owned = [...arrays, sift.classes].filter((a) => a.byteLength === a.buffer.byteLength).map((a) => a.buffer);
    return move({ [transferableSymbol]: [...new Set(owned)], [valueSymbol]: { sift } } as never);
  } catch (err) {
    if ((err as { status?: number }).status === 400) return { refused: (err as Error).message };
    throw err;
  } finally {
    t.seed.fill(0);
    t.ms[0] = performance.now() - start;
  }
}
