import { createCipheriv, hkdfSync } from 'node:crypto';
import type { BlockSink, KeySource, KeySourceInfo, SourceBlock, SourceState } from './key-source.js';

export interface SimulatedLinkOptions {
  readonly linkId: string;
  /** Shared by both ends of the link: both derive the same blocks from it. A simulator secret. */
  readonly seed: Buffer;
  /** Secret key rate of the simulated link, bits per second. */
  readonly rateBps: number;
  readonly blockBits: number;
  /** When the link started producing (ms since the Unix epoch); the same at both ends. */
  readonly epochMs: number;
  /** How many of the most recent blocks the link still holds for an end that was away. */
  readonly historyBlocks: number;
  readonly tickMs?: number;
  readonly now?: () => number;
}

const MAX_BATCH = 4096;

/**
 * A stand-in for a QKD link, not a QKD link: both ends compute identical blocks from a shared seed
 * at the configured secret key rate, as a pair of devices would deliver them. Its keys are only as
 * secret as the seed. The physics-level simulator replaces it behind the same interface.
 */
export class SimulatedLink implements KeySource {
  readonly linkId: string;
  readonly blockBits: number;
  readonly #opts: SimulatedLinkOptions;
  readonly #key: Buffer;
  readonly #now: () => number;
  #state: SourceState = 'stopped';
  #timer: NodeJS.Timeout | undefined;
  #running: Promise<void> = Promise.resolve();
  #nextSeq = 0;
  #lastError: string | undefined;

  constructor(opts: SimulatedLinkOptions) {
    if (opts.blockBits % 128 !== 0 || opts.blockBits <= 0) throw new TypeError('blockBits must be a multiple of 128');
    if (!(opts.rateBps > 0)) throw new TypeError('rateBps must be positive');
    this.linkId = opts.linkId;
    this.blockBits = opts.blockBits;
    this.#opts = opts;
    this.#now = opts.now ?? Date.now;
    this.#key = Buffer.from(hkdfSync('sha256', opts.seed, Buffer.from(opts.linkId), 'qks/simulated-link/v1', 32));
  }

  info(): KeySourceInfo {
    return {
      linkId: this.linkId,
      kind: 'simulated',
      protocol: 'simulator (shared seed; not QKD)',
      state: this.#lastError ? 'failed' : this.#state,
      ...(this.#lastError ? { error: this.#lastError } : {}),
      rateBps: this.#opts.rateBps,
      blockBits: this.blockBits,
      description: 'Simulated QKD link: both ends derive identical blocks from a shared seed at a fixed rate',
    };
  }

  /** The newest block the link has produced by `now`, or -1 before the first. */
  producedUpTo(now = this.#now()): number {
    const bits = ((now - this.#opts.epochMs) / 1000) * this.#opts.rateBps;
    return Math.floor(bits / this.blockBits) - 1;
  }

  block(seq: number): Buffer {
    return this.blocks(seq, seq)[0]!;
  }

  /** Blocks `first`…`last`: consecutive stretches of one AES-256-CTR keystream, made in one call. */
  blocks(first: number, last: number): Buffer[] {
    const bytes = this.blockBits / 8;
    const iv = Buffer.alloc(16);
    iv.writeBigUInt64BE(BigInt(first) * BigInt(bytes / 16), 8);
    const stream = createCipheriv('aes-256-ctr', this.#key, iv).update(Buffer.alloc((last - first + 1) * bytes));
    return Array.from({ length: last - first + 1 }, (_, i) => stream.subarray(i * bytes, (i + 1) * bytes));
  }

  start(afterSeq: number | null, sink: BlockSink): void {
    const oldestHeld = Math.max(0, this.producedUpTo() - this.#opts.historyBlocks + 1);
    this.#nextSeq = Math.max(afterSeq === null ? 0 : afterSeq + 1, oldestHeld);
    this.#state = 'running';
    const tick = () => {
      this.#running = this.#deliver(sink)
        .then(
          () => {
            this.#lastError = undefined;
            return this.#opts.tickMs ?? 100;
          },
          (err: unknown) => {
            // A store that refused a batch is retried; the blocks are delivered again from #nextSeq.
            this.#lastError = (err as Error).message;
            return 1000;
          },
        )
        .then((delay) => {
          if (this.#state === 'running') this.#timer = setTimeout(tick, delay);
        });
    };
    tick();
  }

  async #deliver(sink: BlockSink): Promise<void> {
    const upTo = this.producedUpTo();
    while (this.#state === 'running' && this.#nextSeq <= upTo) {
      const last = Math.min(upTo, this.#nextSeq + MAX_BATCH - 1);
      const first = this.#nextSeq;
      const blocks: SourceBlock[] = this.blocks(first, last).map((bytes, i) => ({ seq: first + i, bytes }));
      await sink(blocks, last);
      this.#nextSeq = last + 1;
    }
  }

  async stop(): Promise<void> {
    this.#state = 'stopped';
    clearTimeout(this.#timer);
    await this.#running.catch(() => undefined);
  }
}
