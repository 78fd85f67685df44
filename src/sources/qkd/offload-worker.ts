import { move, transferableSymbol, valueSymbol } from 'piscina';
import { Transmitter } from '../../physics/transmitter.js';
import type { LinkPhysics } from '../../physics/link-model.js';
import { siftAtAlice } from './alice-sifting.js';
import { compress } from '../../qkd/compress.js';
import { splitBits, splitMasks } from '../../qkd/sifting.js';
import { encodeIndices } from './wire.js';
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

/** `a` in a buffer of its own (it can move without taking anything else along); a copy wipes `a`. */
function alone<T extends Uint8Array | Uint32Array>(a: T): T {
  if (a.byteOffset === 0 && a.byteLength === a.buffer.byteLength) return a;
  // A real copy (Buffer's slice would be a view of the same memory).
  const copy = (a instanceof Uint32Array ? a.slice() : new Uint8Array(a)) as T;
  a.fill(0);
  return copy;
}

/** Bob's announcement of his clicks (wire.encodeIndices): public, but 18 MB to read per frame. */
export function detections(t: { indices: Uint32Array; ms: Float64Array }): unknown {
  const start = performance.now();
  try {
    return move(alone(encodeIndices(t.indices)));
  } finally {
    t.ms[0] = performance.now() - start;
  }
}

/** Bob's sifting: his bits where the bases matched, split into key and disclosed bits (both move back). */
export function bobSifting(t: {
  bits: Uint32Array;
  match: Uint32Array;
  count: number;
  signal: Uint32Array;
  sifted: number;
  seed: number;
  fraction: number;
  ms: Float64Array;
}): unknown {
  const start = performance.now();
  try {
    const kept = compress(t.bits, t.match, t.count).bits;
    const parts = splitBits(kept, t.sifted, splitMasks(t.signal, t.sifted, t.seed, t.fraction));
    wipe(kept);
    const key = { ...parts.key, bits: alone(parts.key.bits) };
    const disclosed = { ...parts.disclosed, bits: alone(parts.disclosed.bits) };
    return move({
      [transferableSymbol]: [key.bits.buffer, disclosed.bits.buffer],
      [valueSymbol]: { key, disclosed },
    } as never);
  } finally {
    wipe(t.bits);
    t.ms[0] = performance.now() - start;
  }
}
