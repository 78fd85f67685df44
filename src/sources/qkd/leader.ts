import { wipe, type Bits } from '../../qkd/bits.js';
import { badRequest } from '../../domain/errors.js';
import { CascadeResponder } from '../../qkd/cascade.js';
import { planPasses } from '../../qkd/cascade-plan.js';
import { efficiency, secretLength } from '../../qkd/estimation.js';
import { amplifyOffThread, siftOffThread, viewsOffThread } from './offload.js';
import { Prng } from '../../qkd/prng.js';
import { Transmitter } from '../../physics/transmitter.js';
import { estimateAtAlice } from './alice-sifting.js';
import type { FrameSummary } from './frame-stats.js';
import type { QkdSettings } from './settings.js';
import { verificationTag } from './frame-hashes.js';
import { StageClock } from './stages.js';
import * as wire from './wire.js';

/** The classical channel to the other end, as the leader uses it (byte fields as Uint8Array). */
export interface LinkChannel {
  call(op: wire.QkdOp, body: Record<string, unknown>): Promise<unknown>;
}

/** A frame up to its verified key; `commit` gives it block numbers (absent: discarded). */
export interface FrameRun {
  summary: FrameSummary;
  commit?: (firstSeq: number) => Promise<FrameResult>;
}

export interface FrameResult {
  readonly summary: FrameSummary;
  /** The frame's secret key, when it gave one (consumed by the caller, who wipes it). */
  readonly key?: Buffer;
}

const MAX_CASCADE_ROUNDS = 2000;

/**
 * Alice's end, which leads: it runs each frame's post-processing by asking Bob's end over the
 * channel. Alice is the reference of error correction (Bob corrects his bits to hers).
 */
export class Leader {
  readonly clock = new StageClock();
  readonly #linkId: string;
  readonly #settings: QkdSettings;
  readonly #tx: Transmitter;
  readonly #seed: Uint8Array;
  readonly #channel: LinkChannel;
  readonly #blockBits: number;
  /** Frames of detection events recorded ahead and replayed in turn (benchmarks only), or 0. */
  #recorded = 0;
  /** Bob's highest block number, as he last reported it. */
  followerLastSeq = -1;

  constructor(opts: {
    linkId: string;
    settings: QkdSettings;
    seed: Uint8Array;
    channel: LinkChannel;
    blockBits: number;
  }) {
    this.#linkId = opts.linkId;
    this.#settings = opts.settings;
    this.#seed = opts.seed;
    this.#tx = new Transmitter(opts.settings.physics, opts.seed);
    this.#channel = opts.channel;
    this.#blockBits = opts.blockBits;
  }

  get transmitter(): Transmitter {
    return this.#tx;
  }

  #call(op: wire.QkdOp, frame: number, body: Record<string, unknown> = {}): Promise<Record<string, unknown>> {
    return this.clock.wait(async () =>
      wire.obj(await this.#channel.call(op, { link_ID: this.#linkId, frame, ...body })),
    );
  }

  /**
   * Benchmarks of the post-processing alone: simulates the quantum channel of `frames` frames now,
   * which Bob keeps; later frames replay them in turn (frame f uses the detections of f mod
   * `frames`), as if the detection events came from hardware. Their keys repeat: never for use.
   */
  async recordAhead(frames: number): Promise<void> {
    if (!(Number.isInteger(frames) && frames >= 1 && frames <= 64)) throw new RangeError('record 1..64 frames');
    for (let frame = 0; frame < frames; frame++) await this.#fibre(frame, true);
    this.#recorded = frames;
  }

  /** The simulated fibre: the photons of one frame that reach Bob's detector cross to him. */
  async #fibre(frame: number, record = false): Promise<void> {
    const N = this.#settings.framePulses;
    const arrivals = this.clock.time('physics', () => this.#tx.emit(frame, N));
    await this.#call('fibre', frame, {
      pulses: N,
      count: arrivals.indices.length,
      indices: wire.encodeIndices(arrivals.indices),
      states: wire.encodeCrumbs(arrivals.states),
      ...(record ? { record: true } : {}),
    });
  }

  /**
   * One frame, up to a verified key and its length. `commit` then assigns block numbers and
   * finishes the frame at both ends (the caller runs commits one at a time, in order).
   */
  async runFrame(frame: number): Promise<FrameRun> {
    // Key material the frame holds, wiped whatever fails (a message, a check, the worker).
    const held: Array<Bits | CascadeResponder> = [];
    try {
      return await this.#steps(frame, held);
    } catch (err) {
      for (const x of held)
        if (x instanceof CascadeResponder) x.wipe();
        else wipe(x);
      throw err;
    }
  }

  async #steps(frame: number, held: Array<Bits | CascadeResponder>): Promise<FrameRun> {
    const s = this.#settings;
    const N = s.framePulses;
    const rng = Prng.fromBytes(this.#seed, 0x70756263, frame);
    // The frame whose pulses these are: itself, or the recorded one it replays.
    const physical = this.#recorded > 0 ? frame % this.#recorded : frame;
    if (this.#recorded === 0) await this.#fibre(frame);
    const det = await this.#call('detections', frame, this.#recorded > 0 ? { replay: physical } : {});
    const m = wire.int(det['count'], 'count', 0, N);
    const bobBases = wire.decodeBits(det['bases'], m, 'bases');
    const lastSeq = wire.int(det['last_seq'], 'last_seq', -1);

    // Sifting: Alice's choices for the pulses Bob detected, and the split of those kept.
    const sampleSeed = rng.u32();
    const sift = await siftOffThread(
      this.clock,
      { physics: s.physics, seed: this.#seed },
      physical,
      det['indices'],
      bobBases,
      {
        m,
        N,
        sampleSeed,
        fraction: s.sampleFraction,
      },
    );
    held.push(sift.key.bits, sift.disclosed.bits);
    this.followerLastSeq = lastSeq;
    const sifted = sift.kept.count;
    const summary = (over: Partial<FrameSummary>): FrameSummary => ({
      pulses: N,
      clicks: m,
      sifted,
      secretBits: 0,
      qber: 0,
      efficiency: 0,
      ...over,
    });
    const siftReply = await this.#call('sifting', frame, {
      match: wire.encodeBits(sift.kept.match, m),
      classes: sift.classes,
      sample_seed: sampleSeed,
      sample_fraction: s.sampleFraction,
    });
    const bobDisclosed = wire.decodeBits(siftReply['bits'], sift.disclosed.count, 'bits');

    const est = this.clock.time('estimation', () => estimateAtAlice(sift, bobDisclosed, s));
    const discard = async (reason: string, over: Partial<FrameSummary> = {}) => {
      const sum = summary({ qber: est.qber, ...over, discarded: reason });
      await this.#call('discard', frame, { reason, summary: sum });
      return { summary: sum };
    };
    const { count: n, bits: key } = sift.key;
    if (est.qber > s.qberThreshold) {
      wipe(key);
      return discard('qber_above_threshold');
    }
    if (n < 2 || est.singlePhotonFraction <= 0) {
      wipe(key);
      return discard('no_single_photon_bound');
    }

    // Error correction: Bob's key bits converge on Alice's. Bob runs the searches (the heavier
    // side of Cascade) and asks; Alice answers parities from her fixed key and counts each one.
    const passes = planPasses(s.cascade, Math.max(est.qber, 0.005), n, rng);
    const cascade = new CascadeResponder(key, n);
    held.push(cascade);
    cascade.addPasses(passes);
    // Alice's views of every pass are made on the worker thread while Bob reads the passes.
    let reply: Record<string, unknown>;
    try {
      let views: Uint32Array;
      [reply, views] = await alongside(
        this.#call('cascade', frame, { passes }),
        viewsOffThread(this.clock, key, n, passes),
        (v) => wipe(v),
      );
      cascade.useViews(views);
    } catch (err) {
      wipe(key);
      throw err;
    }
    for (let rounds = 1; reply['done'] !== true; rounds++) {
      if (rounds >= MAX_CASCADE_ROUNDS) {
        wipe(key);
        cascade.wipe();
        return discard('cascade_did_not_converge', { qber: est.qber });
      }
      // Bob's first batch is implied (every top-level block); later ones are explicit.
      const topLevel = rounds === 1 && reply['top_level'] === true;
      const questions = topLevel ? undefined : wire.decodeU32(reply['questions'], 'questions', 3 * 2 ** 22);
      const answers = this.clock.time('cascade', () => {
        try {
          return questions ? cascade.answer(questions) : cascade.answerTopLevel();
        } catch (err) {
          throw badRequest(`Bob's Cascade questions: ${(err as Error).message}`);
        }
      });
      reply = await this.#call('cascade', frame, { parities: answers });
    }
    cascade.wipe();
    // Bob's count of the bits he corrected: for the statistics (f, true QBER) only.
    const errorsFound = wire.int(reply['corrected'], 'corrected', 0, n);
    const f = efficiency(cascade.disclosed, n, errorsFound);

    // Verification: a 64-bit Toeplitz tag of both keys, the matrix expanded from a 32-byte seed
    // (ours computed while Bob computes his).
    const tagSeed = Buffer.from(rng.fill(new Uint32Array(8)).buffer);
    const verifying = this.#call('verify', frame, { seed: wire.encodeBytes(tagSeed) });
    const ours = this.clock.time('verification', () => verificationTag(key, n, tagSeed));
    const verifyReply = await verifying;
    const theirs = wire.decodeBytes(verifyReply['tag'], 'tag', 8);
    const trueQber = errorsFound / n;
    if (!ours.equals(theirs)) {
      wipe(key);
      return discard('verification_failed', { qber: trueQber, efficiency: f });
    }
    const disclosed = cascade.disclosed + 64;
    const bits = secretLength(est, n, disclosed, s.epsilonPa);
    const outBits = Math.floor(bits / this.#blockBits) * this.#blockBits;
    if (outBits === 0) {
      wipe(key);
      return discard('no_secret_key', { qber: trueQber, efficiency: f });
    }
    const done = summary({ qber: trueQber, efficiency: f, secretBits: outBits });
    // Both ends amplify now, at the same time; only the block numbers (commit) wait their turn.
    const paSeed = Buffer.from(rng.fill(new Uint32Array(8)).buffer);
    let secret: Buffer;
    try {
      [, secret] = await alongside(
        this.#call('amplify', frame, { seed: wire.encodeBytes(paSeed), out_bits: outBits }),
        amplifyOffThread(this.clock, key, n, paSeed, outBits),
        (mine) => mine.fill(0),
      );
    } finally {
      wipe(key);
    }
    const commit = async (firstSeq: number): Promise<FrameResult> => {
      try {
        const reply = await this.#call('commit', frame, { first_seq: firstSeq, summary: done });
        this.followerLastSeq = wire.int(reply['last_seq'], 'last_seq', -1);
      } catch (err) {
        secret.fill(0);
        throw err;
      }
      return { summary: done, key: secret };
    };
    return { summary: done, commit };
  }
}

/** The peer's answer and a result computed here meanwhile; if either fails, `dispose` gets the other's. */
async function alongside<R, L>(remote: Promise<R>, local: Promise<L>, dispose: (l: L) => void): Promise<[R, L]> {
  const [r, l] = await Promise.allSettled([remote, local]);
  if (l.status === 'rejected') throw l.reason;
  if (r.status === 'rejected') {
    dispose(l.value);
    throw r.reason;
  }
  return [r.value, l.value];
}
