import { createCipheriv } from 'node:crypto';
import { bitsToBytes, wipe, type Bits } from '../../qkd/bits.js';
import { amplificationSeedBytes, amplify } from '../../qkd/hashing.js';

/** Where a link end spends its time, by stage (ms), for the benchmark. */
export const STAGES = [
  'physics',
  'sifting',
  'estimation',
  'cascade',
  'verification',
  'amplification',
  'channel',
] as const;
export type Stage = (typeof STAGES)[number];

/**
 * Computing stages are timed in CPU time (on a shared machine wall time would count other
 * processes' turns); `channel` is wall time spent waiting for the other end.
 */
export class StageClock {
  readonly ms: Record<Stage, number> = Object.fromEntries(STAGES.map((s) => [s, 0])) as Record<Stage, number>;

  time<T>(stage: Stage, f: () => T): T {
    const t = process.cpuUsage();
    try {
      return f();
    } finally {
      const d = process.cpuUsage(t);
      this.ms[stage] += (d.user + d.system) / 1000;
    }
  }

  /** Time measured elsewhere (on the worker thread, as wall time there). */
  add(stage: Stage, ms: number): void {
    this.ms[stage] += ms;
  }

  async wait<T>(f: () => Promise<T>): Promise<T> {
    const t = performance.now();
    try {
      return await f();
    } finally {
      this.ms.channel += performance.now() - t;
    }
  }
}

/** The public seeds of privacy amplification, expanded from 32 bytes with AES-256-CTR. */
export function expandSeed(seed: Uint8Array, bytes: number): Buffer {
  return createCipheriv('aes-256-ctr', seed, Buffer.alloc(16)).update(Buffer.alloc(bytes));
}

/** Privacy amplification of an n-bit reconciled key to `outBits` secret bits, as both ends run it. */
export function secretKey(key: Bits, n: number, seed: Uint8Array, outBits: number): Buffer {
  const seeds = expandSeed(seed, 2 * amplificationSeedBytes(n, outBits));
  const half = seeds.length / 2;
  const out = amplify(key, n, seeds.subarray(0, half), seeds.subarray(half), outBits);
  const bytes = bitsToBytes(out, outBits);
  wipe(out);
  return bytes;
}

/** The frame's secret key as blocks of `blockBits`. */
export function toBlocks(key: Buffer, blockBits: number): Buffer[] {
  const size = blockBits / 8;
  return Array.from({ length: Math.floor(key.length / size) }, (_, i) =>
    Buffer.from(key.subarray(i * size, (i + 1) * size)),
  );
}
