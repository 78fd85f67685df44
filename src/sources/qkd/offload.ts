import { Piscina } from 'piscina';
import { wipe, type Bits } from '../../qkd/bits.js';
import type { Stage, StageClock } from './stages.js';

/**
 * A frame's long computations (privacy amplification's big multiplication, the verification tag)
 * run on a worker thread. The event loop then keeps answering the other frames' short messages —
 * Cascade takes hundreds of round trips per frame — instead of queueing them behind 40 ms steps,
 * which left both ends idle while each waited on the other (docs/qkd-link.md, "Throughput").
 * One thread per process, shared by every link; it does not keep the process alive.
 */
let pool: Piscina | undefined;
const workers = () =>
  (pool ??= new Piscina({
    filename: new URL('./offload-worker.js', import.meta.url).href,
    minThreads: 1,
    maxThreads: 1,
    idleTimeout: 60_000,
  }));

/** Runs `name` on the key, which moves to the worker (a copy when `keep`) and is wiped there. */
async function run(
  clock: StageClock,
  stage: Stage,
  key: Bits,
  keep: boolean,
  args: Record<string, unknown>,
): Promise<Buffer> {
  // The key travels alone in its buffer: transferring a view would detach whatever shares it.
  const own = keep || key.byteOffset !== 0 || key.byteLength !== key.buffer.byteLength ? key.slice() : key;
  if (own !== key && !keep) wipe(key);
  const ms = new Float64Array(new SharedArrayBuffer(8));
  const out = (await workers().run(
    { ...args, key: own, ms },
    { name: stage, transferList: [own.buffer as ArrayBuffer] },
  )) as Uint8Array;
  clock.add(stage, ms[0]!);
  return Buffer.from(out.buffer, out.byteOffset, out.byteLength);
}

/** The frame's secret key; `key` is detached or wiped. */
export const amplifyOffThread = (clock: StageClock, key: Bits, n: number, seed: Uint8Array, outBits: number) =>
  run(clock, 'amplification', key, false, { n, seed, outBits });

/** The 64-bit verification tag of the key (which stays the caller's). */
export const tagOffThread = (clock: StageClock, key: Bits, n: number, seed: Uint32Array) =>
  run(clock, 'verification', key, true, { n, seed });
