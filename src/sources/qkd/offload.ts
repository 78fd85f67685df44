import { Piscina } from 'piscina';
import { wipe, type Bits } from '../../qkd/bits.js';
import type { PassSpec } from '../../qkd/cascade-plan.js';
import { badRequest } from '../../domain/errors.js';
import type { LinkPhysics } from '../../physics/link-model.js';
import type { AliceSift } from './alice-sifting.js';
import type { Stage, StageClock } from './stages.js';

/**
 * A frame's long computations (privacy amplification's big multiplication, the responder's Cascade
 * views) run on a worker thread. The event loop then keeps answering the other frames' short
 * messages — Cascade takes hundreds of round trips per frame — instead of queueing them behind
 * 40 ms steps, which left both ends idle while each waited on the other (docs/qkd-link.md,
 * "Throughput"). One thread per process, shared by every link; it does not keep the process alive.
 */
let pool: Piscina | undefined;
const workers = () =>
  (pool ??= new Piscina({
    filename: new URL('./offload-worker.js', import.meta.url).href,
    minThreads: 1,
    maxThreads: 1,
    idleTimeout: 60_000,
  }));

/** Runs the stage's step on the key, which moves to the worker (a copy when `keep`) and is wiped there. */
async function run(clock: StageClock, stage: Stage, key: Bits, keep: boolean, args: Record<string, unknown>) {
  // The key travels alone in its buffer: transferring a view would detach whatever shares it.
  const own = keep || key.byteOffset !== 0 || key.byteLength !== key.buffer.byteLength ? key.slice() : key;
  if (own !== key && !keep) wipe(key);
  const ms = new Float64Array(new SharedArrayBuffer(8));
  const task = workers().run({ ...args, key: own, ms }, { name: stage, transferList: [own.buffer as ArrayBuffer] });
  // Refused before it left (a closed pool): the copy is still here (empty if it had moved).
  const out = (await task.catch((err: unknown) => {
    wipe(own);
    throw err;
  })) as Uint8Array | Uint32Array;
  clock.add(stage, ms[0]!);
  return out;
}

const asBuffer = (a: Uint8Array | Uint32Array) => Buffer.from(a.buffer, a.byteOffset, a.byteLength);

/** The frame's secret key; `key` is detached or wiped. */
export const amplifyOffThread = async (clock: StageClock, key: Bits, n: number, seed: Uint8Array, outBits: number) =>
  asBuffer(await run(clock, 'amplification', key, false, { n, seed: new Uint8Array(seed), outBits }));

/** Cascade's responder views of the key (which stays the caller's), of every pass in one piece (responderViews). */
export const viewsOffThread = async (clock: StageClock, key: Bits, n: number, passes: readonly PassSpec[]) =>
  (await run(clock, 'cascade', key, true, { n, passes })) as Uint32Array;

/**
 * Alice's sifting of a frame (siftAtAlice) on the worker: Bob's click indices and bases go as
 * copies, with her transmitter's physics and seed; the result's arrays move back.
 */
export async function siftOffThread(
  clock: StageClock,
  tx: { physics: LinkPhysics; seed: Uint8Array },
  frame: number,
  indices: unknown,
  bobBases: Bits,
  o: { m: number; N: number; sampleSeed: number; fraction: number },
): Promise<AliceSift> {
  const ms = new Float64Array(new SharedArrayBuffer(8));
  // Exact copies that move: a view would carry its whole message buffer along.
  const bytes = indices instanceof Uint8Array ? new Uint8Array(indices) : indices;
  const bases = bobBases.slice();
  // The device seed too: a small Buffer is a view into a shared pool, which a clone would copy whole.
  const seed = new Uint8Array(tx.seed);
  const moved = [bases.buffer, seed.buffer, ...(bytes instanceof Uint8Array ? [bytes.buffer] : [])] as ArrayBuffer[];
  const task = { physics: tx.physics, seed, frame, indices: bytes, bobBases: bases, o, ms };
  try {
    const out = (await workers().run(task, { name: 'sifting', transferList: moved })) as {
      sift?: AliceSift;
      refused?: string;
    };
    if (out.refused !== undefined) throw badRequest(out.refused);
    return out.sift!;
  } finally {
    clock.add('sifting', ms[0]!);
  }
}
