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

/** Calls of one stage whose CPU time is read, one in this many (see StageClock). */
const SAMPLE_EVERY = 16;
/** Calls longer than this (ms, on average per stage) always have their CPU time read. */
const LONG_CALL_MS = 2;

/**
 * Computing stages are timed in CPU time (on a shared machine wall time would count other
 * processes' turns); `channel` is wall time spent waiting for the other end. Reading the CPU
 * clock (getrusage) costs about a microsecond, as much as some of Cascade's hundreds of small
 * calls per frame: those are all timed by the wall clock, and one in sixteen also by the CPU
 * clock, whose ratio of CPU to wall time then scales the others. Long calls are read exactly.
 */
export class StageClock {
  readonly ms: Record<Stage, number> = Object.fromEntries(STAGES.map((s) => [s, 0])) as Record<Stage, number>;
  readonly #calls = new Map<Stage, { calls: number; wallMs: number; sampledWall: number; sampledCpu: number }>();

  time<T>(stage: Stage, f: () => T): T {
    let c = this.#calls.get(stage);
    if (!c) this.#calls.set(stage, (c = { calls: 0, wallMs: 0, sampledWall: 0, sampledCpu: 0 }));
    const exact = c.calls++ % SAMPLE_EVERY === 0 || c.wallMs > LONG_CALL_MS * c.calls;
    const cpu = exact ? process.cpuUsage() : undefined;
    const wall = performance.now();
    try {
      return f();
    } finally {
      const wallMs = performance.now() - wall;
      c.wallMs += wallMs;
      if (cpu) {
        const d = process.cpuUsage(cpu);
        const cpuMs = (d.user + d.system) / 1000;
        this.ms[stage] += cpuMs;
        c.sampledWall += wallMs;
        c.sampledCpu += cpuMs;
      } else this.ms[stage] += wallMs * Math.min(1, c.sampledWall > 0 ? c.sampledCpu / c.sampledWall : 1);
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

/** The frame's secret key as blocks of `blockBits`. */
export function toBlocks(key: Buffer, blockBits: number): Buffer[] {
  const size = blockBits / 8;
  return Array.from({ length: Math.floor(key.length / size) }, (_, i) =>
    Buffer.from(key.subarray(i * size, (i + 1) * size)),
  );
}
