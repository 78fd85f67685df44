import { badRequest, QksError } from '../domain/errors.js';
import { ownerOfBlock, type LinkEnds } from '../domain/material.js';
import type { Barrier } from '../stores/barrier.js';
import type { KeyStore } from '../stores/key-store.js';
import type { KeySource, KeySourceInfo, SourceBlock } from '../sources/key-source.js';

/** Most reservations waiting for blocks of one link at once; more are refused at once. */
export const MAX_BLOCK_WAITERS = 1024;
/** A follower counts the link as running while blocks arrived this recently. */
const FOLLOWER_LIVE_MS = 5000;

interface Waiter {
  readonly seq: number;
  wake(): void;
}

export interface LinkPoolOptions {
  readonly kmeId: string;
  readonly ends: LinkEnds;
  /** Most blocks of this KME's own share kept; the oldest go first when the pool is full. */
  readonly capacityBlocks: number;
}

/**
 * The material of one link at this KME: seals what the key source delivers into the store, keeps
 * each share within bounds, and lets callers wait for blocks that have not arrived yet.
 *
 * The peer's share is kept twice as deep as our own: the peer never cuts keys from blocks older
 * than its newest `capacityBlocks`, so every block it names is still here. The oldest blocks go
 * first when a pool is full, so a pool always holds the freshest material.
 */
export class LinkPool {
  readonly ends: LinkEnds;
  readonly peerKme: string;
  readonly capacityBlocks: number;
  readonly #kmeId: string;
  readonly #store: KeyStore;
  readonly #barrier: Barrier;
  readonly #source: KeySource;
  #latestSeq = -1;
  /** The newest block when the pool started: what came after was made during this run. */
  #startSeq = -1;
  readonly #waiters = new Set<Waiter>();
  readonly #view: KeySource;
  /** Whether this process runs the source (always, unless it is a replica that follows). */
  #leading = true;
  /** When the newest block number last grew (ms). */
  #advancedAt = 0;
  /** Replicas: reads what the link's owner ingested (follow()). */
  #followTimer: NodeJS.Timeout | undefined;

  constructor(opts: LinkPoolOptions, store: KeyStore, barrier: Barrier, source: KeySource) {
    this.ends = opts.ends;
    this.#kmeId = opts.kmeId;
    this.capacityBlocks = opts.capacityBlocks;
    this.peerKme = opts.ends.endpoints.find((e) => e !== opts.kmeId)!;
    this.#store = store;
    this.#barrier = barrier;
    this.#source = source;
    this.#view = {
      linkId: source.linkId,
      blockBits: source.blockBits,
      info: () => this.#info(),
      start: (afterSeq, sink) => source.start(afterSeq, sink),
      stop: () => source.stop(),
    };
  }

  get linkId(): string {
    return this.ends.linkId;
  }

  /**
   * The link's source as this KME reports it. At a replica that follows (another one runs the
   * source), it is running while what the owner ingests keeps arriving.
   */
  get source(): KeySource {
    return this.#view;
  }

  #info(): KeySourceInfo {
    const info = this.#source.info();
    if (this.#leading) return info;
    const live = Date.now() - this.#advancedAt < FOLLOWER_LIVE_MS;
    return {
      ...info,
      state: live ? 'running' : info.state,
      description: `${info.description} (run by another replica of this KME)`,
    };
  }

  get latestSeq(): number {
    return this.#latestSeq;
  }

  /** Whether the link has delivered a block since this KME started it. */
  get madeSinceStart(): boolean {
    return this.#latestSeq > this.#startSeq;
  }

  async start(): Promise<void> {
    const last = await this.#store.lastSeq(this.linkId);
    this.#latestSeq = this.#startSeq = last ?? -1;
    this.#source.start(last, (blocks, lastSeq) => this.#ingest(blocks, lastSeq));
  }

  /** Starts the source after what the store holds now (this replica gained the link's lease). */
  async resume(): Promise<void> {
    this.#leading = true;
    const last = await this.#store.lastSeq(this.linkId);
    this.#advance(last ?? -1);
    this.#source.start(last, (blocks, lastSeq) => this.#ingest(blocks, lastSeq));
  }

  async stop(): Promise<void> {
    clearInterval(this.#followTimer);
    await this.#source.stop();
    for (const w of [...this.#waiters]) w.wake();
  }

  /**
   * Replicas of one KME (docs/operations.md): the source runs only at the replica that holds the
   * link's lease (start() when it gains it, pause() when it loses it); every replica reads from the
   * shared store, every `intervalMs`, what the owner ingested, and wakes reservations waiting for it.
   * Called once at start, before the lease is tried.
   */
  async follow(intervalMs: number): Promise<void> {
    const last = await this.#store.lastSeq(this.linkId);
    this.#latestSeq = this.#startSeq = last ?? -1;
    this.#leading = false;
    clearInterval(this.#followTimer);
    this.#followTimer = setInterval(() => {
      void this.#store.lastSeq(this.linkId).then(
        (last) => this.#advance(last ?? -1),
        () => undefined,
      );
    }, intervalMs);
    this.#followTimer.unref();
  }

  /** Stops the source (this replica lost the link's lease); reservations keep waiting. */
  pause(): Promise<void> {
    this.#leading = false;
    return this.#source.stop();
  }

  #advance(latest: number): void {
    if (latest <= this.#latestSeq) return;
    this.#latestSeq = latest;
    this.#advancedAt = Date.now();
    for (const w of [...this.#waiters]) if (w.seq <= latest) w.wake();
  }

  async #ingest(blocks: SourceBlock[], lastSeq: number): Promise<void> {
    // A source retries a batch whose sink failed, even when the failure came after the store had
    // added it (a failed discard); by then some of its blocks may be keys already. Never take a
    // block twice: that would hand out the same material again.
    const fresh = blocks.filter((b) => b.seq > this.#latestSeq);
    for (const b of blocks) if (b.seq <= this.#latestSeq) b.bytes.fill(0);
    const sealed = fresh.map((b) => {
      const block = {
        seq: b.seq,
        owner: ownerOfBlock(this.ends, b.seq),
        sealed: this.#barrier.sealBlock(b.bytes, this.linkId, b.seq),
      };
      b.bytes.fill(0);
      return block;
    });
    await this.#store.addBlocks(this.linkId, sealed, lastSeq);
    this.#advance(lastSeq);
    // Blocks alternate between the two ends, so the newest 2 × capacity block numbers hold this
    // KME's newest `capacity` blocks. Range deletes cost only what they remove.
    await this.#store.discardBlocksBefore(this.linkId, this.#kmeId, this.#latestSeq - 2 * this.capacityBlocks + 1);
    await this.#store.discardBlocksBefore(this.linkId, this.peerKme, this.#latestSeq - 4 * this.capacityBlocks + 1);
  }

  /** Reservations waiting for blocks now. */
  get waiting(): number {
    return this.#waiters.size;
  }

  /**
   * Resolves true once block `seq` has arrived, false after `timeoutMs`. Refuses a block number
   * more than the link's history (4 × capacity numbers, what a link keeps for an end that was
   * away) ahead of the newest here: the link cannot have produced it yet for this end, and waiting
   * would only hold memory. At most MAX_BLOCK_WAITERS wait at once.
   */
  waitForSeq(seq: number, timeoutMs: number): Promise<boolean> {
    if (seq <= this.#latestSeq) return Promise.resolve(true);
    const lead = 4 * this.capacityBlocks;
    const horizon = this.#latestSeq + lead;
    if (seq > horizon) {
      return Promise.reject(
        badRequest(
          `block ${seq} of link ${this.linkId} is beyond what the link can have produced (newest here ${this.#latestSeq}, at most ${lead} ahead)`,
        ),
      );
    }
    if (this.#waiters.size >= MAX_BLOCK_WAITERS) {
      return Promise.reject(
        new QksError(
          'NOT_ENOUGH_KEY_MATERIAL',
          `${this.#waiters.size} reservations already wait for blocks of link ${this.linkId}`,
        ),
      );
    }
    return new Promise((resolve) => {
      const waiter: Waiter = {
        seq,
        wake: () => {
          clearTimeout(timer);
          this.#waiters.delete(waiter);
          resolve(seq <= this.#latestSeq);
        },
      };
      const timer = setTimeout(waiter.wake, timeoutMs);
      this.#waiters.add(waiter);
    });
  }

  /**
   * This KME's blocks, at most the capacity: a batch is added before the oldest blocks are trimmed,
   * and a read in between must not report more than the pool holds once they are (status'
   * stored_key_count never exceeds max_key_count).
   */
  async ownBlocks(): Promise<number> {
    return Math.min(await this.#store.countBlocks(this.linkId, this.#kmeId), this.capacityBlocks);
  }

  async peerBlocks(): Promise<number> {
    return this.#store.countBlocks(this.linkId, this.peerKme);
  }
}
