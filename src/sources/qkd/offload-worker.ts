import { move } from 'piscina';
import { responderViews } from '../../qkd/cascade.js';
import type { PassSpec } from '../../qkd/cascade-plan.js';
import { wipe, type Bits } from '../../qkd/bits.js';
import { secretKey } from './frame-hashes.js';

/**
 * The steps of a frame that offload.ts runs on a worker thread: pure functions of typed arrays.
 * Each wipes the key material it was given and its own byte copies, writes the milliseconds it
 * took to `ms[0]` (shared memory) and moves its result back (not a copy). What cannot be wiped
 * are privacy amplification's BigInts, as on the main thread before.
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
