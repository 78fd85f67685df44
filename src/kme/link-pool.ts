import { ownerOfBlock, type LinkEnds } from '../domain/material.js';
import type { Barrier } from '../stores/barrier.js';
import type { KeyStore } from '../stores/key-store.js';
import type { KeySource, SourceBlock } from '../sources/key-source.js';

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
  #waiters: Array<{ seq: number; resolve: () => void }> = [];

  constructor(opts: LinkPoolOptions, store: KeyStore, barrier: Barrier, source: KeySource) {
    this.ends = opts.ends;
    this.#kmeId = opts.kmeId;
    this.capacityBlocks = opts.capacityBlocks;
    this.peerKme = opts.ends.endpoints.find((e) => e !== opts.kmeId)!;
    this.#store = store;
    this.#barrier = barrier;
    this.#source = source;
  }

  get linkId(): string {
    return this.ends.linkId;
  }

  get source(): KeySource {
    return this.#source;
  }

  get latestSeq(): number {
    return this.#latestSeq;
  }

  async start(): Promise<void> {
    const last = await this.#store.lastSeq(this.linkId);
    this.#latestSeq = last ?? -1;
    this.#source.start(last, (blocks, lastSeq) => this.#ingest(blocks, lastSeq));
  }

  async stop(): Promise<void> {
    await this.#source.stop();
    for (const w of this.#waiters) w.resolve();
    this.#waiters = [];
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
    this.#latestSeq = Math.max(this.#latestSeq, lastSeq);
    this.#waiters = this.#waiters.filter((w) => (w.seq <= this.#latestSeq ? (w.resolve(), false) : true));
    // Blocks alternate between the two ends, so the newest 2 × capacity block numbers hold this
    // KME's newest `capacity` blocks. Range deletes cost only what they remove.
    await this.#store.discardBlocksBefore(this.linkId, this.#kmeId, this.#latestSeq - 2 * this.capacityBlocks + 1);
    await this.#store.discardBlocksBefore(this.linkId, this.peerKme, this.#latestSeq - 4 * this.capacityBlocks + 1);
  }

  /** Resolves true once block `seq` has arrived, false after `timeoutMs`. */
  waitForSeq(seq: number, timeoutMs: number): Promise<boolean> {
    if (seq <= this.#latestSeq) return Promise.resolve(true);
    return new Promise((resolve) => {
      const timer = setTimeout(() => resolve(seq <= this.#latestSeq), timeoutMs);
      this.#waiters.push({
        seq,
        resolve: () => {
          clearTimeout(timer);
          resolve(seq <= this.#latestSeq);
        },
      });
    });
  }

  async ownBlocks(): Promise<number> {
    return this.#store.countBlocks(this.linkId, this.#kmeId);
  }

  async peerBlocks(): Promise<number> {
    return this.#store.countBlocks(this.linkId, this.peerKme);
  }
}
