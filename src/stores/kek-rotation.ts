import type { Logger } from 'pino';
import type { EnvelopeKeys } from './envelope-keys.js';

/** Tests only: stop re-wrapping after this many re-wraps in this process (to kill it mid-rotation). */
export const PAUSE_AFTER_ENV = 'QKS_TEST_REWRAP_PAUSE_AFTER';

export interface SweepResult {
  readonly rewrapped: number;
  readonly retired: string[];
  /** DEKs still under an older KEK (only when the test pause stopped the sweep). */
  readonly left: number;
}

const nextTurn = () => new Promise<void>((resolve) => setImmediate(resolve));

/**
 * Finishes KEK rotations: every DEK not under the current KEK is re-wrapped under it, one at a time
 * with the event loop free between them (the KME keeps serving), each written to disk before the
 * next; then the KEKs nothing is wrapped under any more are destroyed. Work left by a crash is just
 * more of the same for the next sweep.
 */
export class KekRotation {
  readonly #keys: EnvelopeKeys;
  readonly #log: Logger | undefined;
  readonly #pauseAfter: number;
  #rewrapsInProcess = 0;
  #running: Promise<SweepResult> | undefined;
  #timer: NodeJS.Timeout | undefined;

  constructor(keys: EnvelopeKeys, log?: Logger, env: NodeJS.ProcessEnv = process.env) {
    this.#keys = keys;
    this.#log = log;
    const pause = env[PAUSE_AFTER_ENV];
    this.#pauseAfter = pause === undefined ? Infinity : Number(pause);
  }

  /** Sweeps now and then every `intervalMs`, until stop(). */
  start(intervalMs: number): void {
    const tick = () => {
      this.sweep().catch((err: unknown) =>
        this.#log?.error({ err: (err as Error).message }, 'master key: re-wrapping data keys failed; retried later'),
      );
    };
    tick();
    this.#timer = setInterval(tick, intervalMs);
    this.#timer.unref();
  }

  /** One pass; a call while one runs waits for that one. */
  sweep(): Promise<SweepResult> {
    this.#running ??= this.#sweep().finally(() => (this.#running = undefined));
    return this.#running;
  }

  async stop(): Promise<void> {
    clearInterval(this.#timer);
    await this.#running?.catch(() => undefined);
  }

  async #sweep(): Promise<SweepResult> {
    const { current, names } = this.#keys.pending();
    let rewrapped = 0;
    if (names.length > 0)
      this.#log?.info({ kek: current, data_keys: names.length }, 'master key: re-wrapping data keys');
    for (const name of names) {
      if (this.#rewrapsInProcess >= this.#pauseAfter) {
        this.#log?.warn({ rewrapped: this.#rewrapsInProcess }, `master key: re-wrapping paused by ${PAUSE_AFTER_ENV}`);
        return { rewrapped, retired: [], left: names.length - rewrapped };
      }
      await nextTurn();
      this.#keys.rewrap(name, current);
      rewrapped++;
      this.#rewrapsInProcess++;
    }
    const retired = this.#keys.retireUnused();
    if (retired.length > 0) this.#log?.info({ destroyed: retired, kek: current }, 'master key: old KEKs destroyed');
    return { rewrapped, retired, left: 0 };
  }
}
