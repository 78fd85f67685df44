import { QksError } from '../domain/errors.js';
import { expectedSecretPerPulse } from '../physics/detector.js';
import type { BlockSink, KeySource, KeySourceInfo, SourceBlock, SourceState } from './key-source.js';
import { LinkStatsRecorder, type FrameSummary } from './qkd/frame-stats.js';
import { Follower } from './qkd/follower.js';
import { Leader, type LinkChannel } from './qkd/leader.js';
import type { QkdSettings } from './qkd/settings.js';
import { toBlocks, type StageClock } from './qkd/stages.js';
import type { QkdOp } from './qkd/wire.js';

export interface QkdLinkOptions {
  readonly linkId: string;
  /** The leader (the link's first endpoint, Alice) drives every frame; the follower answers. */
  readonly role: 'leader' | 'follower';
  readonly settings: QkdSettings;
  /** This end's device seed (its own; the two ends share nothing). */
  readonly seed: Uint8Array;
  readonly blockBits: number;
  /** How many undelivered blocks the end keeps for a consumer that is not there yet. */
  readonly historyBlocks: number;
  /** The leader's classical channel to the follower. */
  readonly channel?: LinkChannel;
  /** Frames no faster than the simulated pulses take to send (default); false: as fast as possible. */
  readonly paced?: boolean;
  /** Frames the leader keeps in flight (their exchanges overlap). */
  readonly concurrency?: number;
  readonly log?: { info(o: object, msg: string): void; warn(o: object, msg: string): void };
  readonly now?: () => number;
  /**
   * Benchmarks only: the follower records frames and replays them when the leader asks
   * (recordAhead). Replayed frames repeat their keys, so a KME never sets this.
   */
  readonly allowReplay?: boolean;
}

/**
 * One end of a simulated QKD link with real post-processing: decoy-state BB84 over a modelled
 * fibre, then sifting, estimation, Cascade, verification and privacy amplification between the
 * two ends over the KME-to-KME channel (docs/qkd-link.md). Blocks are the frames' secret keys cut
 * into `blockBits`; the leader numbers them and both ends deliver the same numbers.
 */
export class QkdLink implements KeySource {
  readonly linkId: string;
  readonly blockBits: number;
  readonly stats: LinkStatsRecorder;
  readonly #opts: QkdLinkOptions;
  readonly #leader: Leader | undefined;
  #follower: Follower | undefined;
  /** The follower end was closed (stop()): the next open() makes a new one, with a new run secret. */
  #followerClosed = false;
  readonly #history: SourceBlock[] = [];
  #state: SourceState = 'stopped';
  #open = false;
  #lastSeq = -1;
  #delivered = -1;
  #sink: BlockSink | undefined;
  #delivering: Promise<void> = Promise.resolve();
  #redeliver: NodeJS.Timeout | undefined;
  #engine: Promise<void> = Promise.resolve();
  readonly #sleepers = new Set<() => void>();
  #commits: Promise<unknown> = Promise.resolve();
  #lastError: string | undefined;
  #nextFrame = 0;

  constructor(opts: QkdLinkOptions) {
    if (opts.blockBits % 128 !== 0 || opts.blockBits <= 0) throw new TypeError('blockBits must be a multiple of 128');
    if (opts.role === 'leader' && !opts.channel) throw new TypeError('the leader needs a channel to the follower');
    this.linkId = opts.linkId;
    this.blockBits = opts.blockBits;
    this.#opts = opts;
    this.stats = new LinkStatsRecorder(opts.settings.physics.repetitionRateHz);
    if (opts.role === 'leader') {
      this.#leader = new Leader({ ...opts, channel: opts.channel! });
    } else {
      this.#follower = this.#newFollower();
    }
  }

  #newFollower(): Follower {
    const opts = this.#opts;
    return new Follower({
      linkId: opts.linkId,
      settings: opts.settings,
      seed: opts.seed,
      allowReplay: opts.allowReplay === true,
      events: {
        onKey: async (firstSeq, key, summary) => this.#append(firstSeq, key, summary),
        onDiscard: (summary) => this.stats.record(summary),
        lastSeq: () => this.#lastSeq,
      },
    });
  }

  /** The highest block number this end holds or has delivered. */
  get newestSeq(): number {
    return this.#lastSeq;
  }

  get clock(): StageClock {
    return (this.#leader ?? this.#follower)!.clock;
  }

  /**
   * The secret key rate the model predicts: the asymptotic vacuum + weak decoy bound with the
   * detectors' dead time and afterpulsing, f = 1.22. Finite frames make less (docs/qkd-link.md).
   */
  expectedSecretBps(): number {
    const p = this.#opts.settings.physics;
    return expectedSecretPerPulse(p, 1.22) * p.repetitionRateHz;
  }

  info(): KeySourceInfo {
    const stats = this.stats.stats();
    const measured = this.stats.framesSeen > 0;
    const s = this.#opts.settings;
    return {
      linkId: this.linkId,
      kind: 'qkd-simulator',
      protocol: `decoy-state BB84 (simulated fibre), Cascade ${s.cascade}, Toeplitz verification, two-universal privacy amplification`,
      state: this.#lastError ? 'failed' : this.#state,
      ...(this.#lastError ? { error: this.#lastError } : {}),
      // Measured only: no rate before the first frame; the model's figure is labelled as expected.
      rateBps: measured ? stats.secretBps : null,
      expectedRateBps: this.expectedSecretBps(),
      blockBits: this.blockBits,
      description:
        `Simulated QKD link, ${s.physics.distanceKm} km of fibre at ${s.physics.repetitionRateHz / 1e6} MHz` +
        (s.physics.eveFraction > 0
          ? `, intercept-resend eavesdropper on ${s.physics.eveFraction * 100}% of pulses`
          : ''),
      stats,
    };
  }

  /** Benchmarks only: records the detections of `frames` frames now, replayed later (Leader.recordAhead). */
  recordAhead(frames: number): Promise<void> {
    if (!this.#leader) throw new TypeError('only the leader records frames ahead');
    return this.#leader.recordAhead(frames);
  }

  /** Starts the link itself (frames, or answering them) without a consumer yet. */
  open(): void {
    if (this.#open) return;
    this.#open = true;
    // Opened again at a replica that runs the link anew: the leader it answers now may number its
    // frames from 0 again, and Bob's choices for a frame must never repeat (run-secrets.ts).
    if (this.#followerClosed) {
      this.#follower = this.#newFollower();
      this.#followerClosed = false;
    }
    if (this.#state === 'stopped') this.#state = 'starting';
    if (this.#leader) this.#engine = this.#runLeader();
  }

  start(afterSeq: number | null, sink: BlockSink): void {
    if (afterSeq !== null) {
      this.#lastSeq = Math.max(this.#lastSeq, afterSeq);
      this.#delivered = Math.max(this.#delivered, afterSeq);
    }
    this.#sink = sink;
    this.open();
    this.#state = 'running';
    this.#kick();
  }

  async stop(): Promise<void> {
    this.#open = false;
    this.#sink = undefined;
    this.#state = 'stopped';
    for (const wake of [...this.#sleepers]) wake();
    clearTimeout(this.#redeliver);
    await this.#engine.catch(() => undefined);
    await this.#commits.catch(() => undefined);
    await this.#delivering.catch(() => undefined);
    if (this.#follower) {
      this.#follower.close();
      this.#followerClosed = true;
    }
  }

  /** The follower's side of the channel: one message from the leader. */
  async handle(op: QkdOp, body: unknown): Promise<Record<string, unknown>> {
    if (!this.#follower) throw new QksError('BAD_REQUEST', `this KME leads link ${this.linkId}`);
    if (!this.#open) throw new QksError('PEER_KME_UNAVAILABLE', `link ${this.linkId} is not running here`);
    if (this.#state === 'starting') this.#state = 'running';
    return this.#follower.handle(op, body);
  }

  async #runLeader(): Promise<void> {
    const leader = this.#leader!;
    const s = this.#opts.settings;
    const frameMs = (s.framePulses / s.physics.repetitionRateHz) * 1000;
    const now = this.#opts.now ?? Date.now;
    const t0 = now();
    const worker = async () => {
      while (this.#open) {
        const frame = this.#nextFrame++;
        if (this.#opts.paced !== false) await this.#sleep(t0 + (frame + 1) * frameMs - now());
        if (!this.#open) return;
        try {
          const run = await leader.runFrame(frame);
          if (run.commit) {
            const commit = run.commit;
            const step = this.#commits.then(async () => {
              const result = await commit(
                () => this.#lastSeq,
                async (ms) => (await this.#sleep(ms), this.#open),
              );
              if (result.key) this.#append(result.firstSeq!, result.key, result.summary);
              else this.stats.record(result.summary);
              if (result.summary.discarded)
                this.#opts.log?.warn(
                  { link: this.linkId, frame, reason: result.summary.discarded },
                  'QKD frame discarded',
                );
            });
            this.#commits = step.catch(() => undefined);
            await step;
          } else this.stats.record(run.summary);
          if (run.summary.discarded)
            this.#opts.log?.info({ link: this.linkId, frame, reason: run.summary.discarded }, 'QKD frame discarded');
          this.#lastError = undefined;
        } catch (err) {
          this.#lastError = (err as Error).message;
          this.#opts.log?.warn({ link: this.linkId, frame, err: this.#lastError }, 'QKD frame failed');
          await this.#sleep(1000);
        }
      }
    };
    await Promise.all(Array.from({ length: this.#opts.concurrency ?? 2 }, worker));
  }

  #sleep(ms: number): Promise<void> {
    if (ms <= 0 || !this.#open) return Promise.resolve();
    return new Promise((resolve) => {
      const wake = () => {
        clearTimeout(timer);
        this.#sleepers.delete(wake);
        resolve();
      };
      const timer = setTimeout(wake, ms);
      this.#sleepers.add(wake);
    });
  }

  /**
   * Cuts a frame's key into blocks numbered from `firstSeq` and keeps them for the consumer.
   * Numbers this end holds already are refused whole: a number never names two keys.
   */
  #append(firstSeq: number, key: Buffer, summary: FrameSummary): number {
    if (firstSeq <= this.#lastSeq) {
      key.fill(0);
      throw new Error(`blocks from ${firstSeq} overlap this end's (up to ${this.#lastSeq})`);
    }
    const blocks = toBlocks(key, this.blockBits);
    key.fill(0);
    blocks.forEach((bytes, i) => this.#history.push({ seq: firstSeq + i, bytes }));
    this.#lastSeq = firstSeq + blocks.length - 1;
    while (this.#history.length > this.#opts.historyBlocks) this.#history.shift()!.bytes.fill(0);
    this.stats.record(summary);
    this.#kick();
    return this.#lastSeq;
  }

  #kick(): void {
    this.#delivering = this.#delivering.then(() => this.#deliver());
  }

  async #deliver(): Promise<void> {
    const sink = this.#sink;
    if (!sink) return;
    while (this.#history.length > 0 && this.#history[0]!.seq <= this.#delivered) this.#history.shift()!.bytes.fill(0);
    if (this.#history.length === 0) return;
    const batch = this.#history.slice(0, 4096);
    const last = batch.at(-1)!.seq;
    try {
      // Copies: the consumer wipes what it is given, and a refused batch must be offered again.
      await sink(
        batch.map((b) => ({ seq: b.seq, bytes: Buffer.from(b.bytes) })),
        last,
      );
      this.#delivered = last;
      for (const b of this.#history.splice(0, batch.length)) b.bytes.fill(0);
      if (this.#history.length > 0) this.#kick();
    } catch (err) {
      // The store refused the batch: the same blocks are offered again in a second.
      this.#lastError = (err as Error).message;
      clearTimeout(this.#redeliver);
      this.#redeliver = setTimeout(() => this.#kick(), 1000);
    }
  }
}
