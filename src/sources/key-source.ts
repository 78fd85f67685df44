/**
 * A key source: one end of a QKD link, delivering numbered blocks of key material that the other
 * end receives identically. Real devices and simulators plug in here; every source must pass
 * test/sources/key-source-conformance.ts.
 */
export interface SourceBlock {
  readonly seq: number;
  /** Plain key material; the consumer seals it and wipes this buffer. */
  readonly bytes: Buffer;
}

export type SourceState = 'starting' | 'running' | 'stopped' | 'failed';

/** What a link that does its own post-processing reports of itself (rates in bit/s). */
export interface LinkStats {
  readonly rawBps: number;
  readonly siftedBps: number;
  readonly secretBps: number;
  /** Quantum bit error rate of the latest frame, 0..1. */
  readonly qber: number;
  /** Reconciliation efficiency f (disclosed bits / (n·h(QBER))), 1 = Shannon limit. */
  readonly reconciliationEfficiency: number;
  readonly framesDone: number;
  readonly framesDiscarded: number;
  /** Discarded frames by reason, e.g. `qber_above_threshold`, `verification_failed`. */
  readonly discardReasons: Readonly<Record<string, number>>;
}

export interface KeySourceInfo {
  readonly linkId: string;
  /** Kind of source, e.g. `simulated`; the `qks_key_source` extension matches on it. */
  readonly kind: string;
  /** The key distribution protocol, as the source states it. */
  readonly protocol: string;
  readonly state: SourceState;
  /**
   * Secret key rate, bit/s: measured by a source that measures its link (null until its first
   * frame), else the source's configured rate.
   */
  readonly rateBps: number | null;
  /** The rate a model predicts for this link (not a measurement), when the source has one. */
  readonly expectedRateBps?: number;
  readonly blockBits: number;
  readonly description: string;
  /** Why the source is failing, when it is. */
  readonly error?: string;
  /** Present when the source measures its link (the physics-level simulator, real devices). */
  readonly stats?: LinkStats;
}

export type BlockSink = (blocks: SourceBlock[], lastSeq: number) => Promise<void>;

export interface KeySource {
  readonly linkId: string;
  readonly blockBits: number;
  info(): KeySourceInfo;
  /**
   * Delivers, in order, every block after `afterSeq` (null: from what the link still holds), then
   * new blocks as they come. `sink` is awaited before the next call.
   */
  start(afterSeq: number | null, sink: BlockSink): void;
  stop(): Promise<void>;
}
