import { wipe, type Bits } from '../../qkd/bits.js';
import { badRequest } from '../../domain/errors.js';
import { CascadeResponder } from '../../qkd/cascade.js';
import { planPasses } from '../../qkd/cascade-plan.js';
import { efficiency, secretLength } from '../../qkd/estimation.js';
import { amplifyOffThread, siftOffThread, viewsOffThread } from './offload.js';
import { Prng } from '../../qkd/prng.js';
import { COMMIT_RENUMBERINGS, COMMIT_SENDS, commitDigest } from './commit.js';
import { RunSecrets } from './run-secrets.js';
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

/**
 * A frame up to its verified key; `commit` gives it block numbers after `ownLastSeq()` and the
 * follower's (absent: discarded). `pause` waits between resends; false: the link is stopping.
 */
export interface FrameRun {
  summary: FrameSummary;
  commit?: (ownLastSeq: () => number, pause: (ms: number) => Promise<boolean>) => Promise<FrameResult>;
}

export interface FrameResult {
  readonly summary: FrameSummary;
  /** The frame's secret key, when it gave one (consumed by the caller, who wipes it), and its first block number. */
  readonly key?: Buffer;
  readonly firstSeq?: number;
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
  /** This run's secrets: the transmitter's seed and every frame's seeds (run-secrets.ts). */
  readonly #run: RunSecrets;
  readonly #txSeed: Buffer;
  readonly #channel: LinkChannel;
  readonly #blockBits: number;
  /** Frames of detection events recorded ahead and replayed in turn (benchmarks only), or 0. */
  #recorded = 0;
  /** Bob's last block number as he last reported it (a hint until a commit's answer confirms it). */
  #followerSeq: number | undefined;

  constructor(opts: {
    linkId: string;
    settings: QkdSettings;
    seed: Uint8Array;
    channel: LinkChannel;
    blockBits: number;
  }) {
    this.#linkId = opts.linkId;
    this.#settings = opts.settings;
    this.#run = new RunSecrets(opts.seed);
    this.#txSeed = this.#run.device('transmitter');
    this.#tx = new Transmitter(opts.settings.physics, this.#txSeed);
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
    // The frame whose pulses these are: itself, or the recorded one it replays.
    const physical = this.#recorded > 0 ? frame % this.#recorded : frame;
    if (this.#recorded === 0) await this.#fibre(frame);
    const det = await this.#call('detections', frame, this.#recorded > 0 ? { replay: physical } : {});
    const m = wire.int(det['count'], 'count', 0, N);
    const bobBases = wire.decodeBits(det['bases'], m, 'bases');
    const lastSeq = wire.int(det['last_seq'], 'last_seq', -1);

    // Sifting: Alice's choices for the pulses Bob detected, and the split of those kept.
    const sampleSeed = this.#run.frame('sampling', frame).readUInt32LE(0);
    const sift = await siftOffThread(
      this.clock,
      { physics: s.physics, seed: this.#txSeed },
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
    this.#followerSeq ??= lastSeq;
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
    const shuffles = Prng.fromBytes(this.#run.frame('cascade', frame));
    const passes = planPasses(s.cascade, Math.max(est.qber, 0.005), n, shuffles);
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
    const tagSeed = this.#run.frame('verification', frame);
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
    const paSeed = this.#run.frame('amplification', frame);
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
    const commit = async (ownLastSeq: () => number, pause: (ms: number) => Promise<boolean>) => {
      try {
        return await this.#commit(frame, secret, done, ownLastSeq, pause);
      } catch (err) {
        secret.fill(0);
        throw err;
      }
    };
    return { summary: done, commit };
  }

  /**
   * Gives the frame's key block numbers at both ends (commit.ts): proposed after both ends' last,
   * renumbered when Bob refuses them as out of sequence, resent unchanged when his answer is lost.
   * The key is served (returned) only when Bob's answer shows the same digest of it.
   */
  async #commit(
    frame: number,
    secret: Buffer,
    done: FrameSummary,
    ownLastSeq: () => number,
    pause: (ms: number) => Promise<boolean>,
  ): Promise<FrameResult> {
    for (let renumbered = 0; ; renumbered++) {
      const after = this.#followerSeq ?? ownLastSeq();
      const first = Math.max(ownLastSeq(), after) + 1;
      const digest = commitDigest(secret, this.#linkId, frame, first);
      const body = { after_seq: after, first_seq: first, digest, summary: done };
      const reply = await this.#send(frame, body, pause);
      const refused = reply['refused'];
      if (reply['committed'] === true) {
        this.#followerSeq = wire.int(reply['last_seq'], 'last_seq', first);
        if (!wire.decodeBytes(reply['digest'], 'digest', 32).equals(digest))
          throw new Error(`the follower committed frame ${frame} under another digest`);
        return { summary: done, key: secret, firstSeq: first };
      }
      if (refused === 'digest_mismatch') {
        secret.fill(0);
        return { summary: { ...done, secretBits: 0, discarded: 'commit_digest_mismatch' } };
      }
      this.#followerSeq = wire.int(reply['last_seq'], 'last_seq', -1);
      if (refused !== 'out_of_sequence' || renumbered >= COMMIT_RENUMBERINGS)
        throw new Error(`the follower refused the commit of frame ${frame} (${String(refused)})`);
    }
  }

  /** One commit message, sent again unchanged while its answer is lost (the follower answers a resend the same). */
  async #send(
    frame: number,
    body: Record<string, unknown>,
    pause: (ms: number) => Promise<boolean>,
  ): Promise<Record<string, unknown>> {
    for (let sent = 1; ; sent++) {
      try {
        return await this.#call('commit', frame, body);
      } catch (err) {
        if (sent >= COMMIT_SENDS || !(await pause(500))) throw err;
      }
    }
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
