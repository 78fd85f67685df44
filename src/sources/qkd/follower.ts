import { badRequest } from '../../domain/errors.js';
import { bitsToBytes, hammingDistance, wipe, type Bits } from '../../qkd/bits.js';
import { CascadeCorrector } from '../../qkd/cascade.js';
import { checkPass, type PassSpec } from '../../qkd/cascade-plan.js';
import { compress, countOnes } from '../../qkd/compress.js';
import { amplifyOffThread } from './offload.js';
import { splitBits, splitMasks } from '../../qkd/sifting.js';
import { Receiver, type Clicks } from '../../physics/receiver.js';
import type { FrameSummary } from './frame-stats.js';
import type { QkdSettings } from './settings.js';
import { verificationTag } from './frame-hashes.js';
import { commitDigest, REMEMBERED_COMMITS, type CommitAnswer } from './commit.js';
import { RunSecrets } from './run-secrets.js';
import { StageClock } from './stages.js';
import * as wire from './wire.js';

/**
 * Where a frame stands at Bob. Each message is taken only in its own phase, once: a message resent
 * or out of order (e.g. a second 'sifting' after Cascade, which would replace the corrected key) is
 * refused and changes nothing.
 */
type Phase = 'detected' | 'sifted' | 'cascade' | 'reconciled' | 'verified' | 'amplifying' | 'amplified';

interface FrameState {
  phase: Phase;
  pulses: number;
  clicks?: Clicks;
  key?: Bits;
  n?: number;
  cascade?: CascadeCorrector;
  /** Bob's key before Cascade (to count what it corrected), and how many questions are out. */
  before?: Bits;
  asked?: number;
  /** The frame's secret key, amplified and waiting for its block numbers. */
  secret?: Buffer;
}

/** Frames a follower keeps at once; an older one is dropped when a new one arrives. */
const MAX_FRAMES = 16;
/** Frames of detections a benchmark may record ahead (Leader.recordAhead). */
const MAX_RECORDED = 64;

export interface FollowerEvents {
  /**
   * A frame finished: its secret key (the callee wipes it) and its first block number, after
   * `lastSeq()` (checked just before, with no turn of the event loop between).
   */
  onKey(firstSeq: number, key: Buffer, summary: FrameSummary): Promise<number>;
  onDiscard(summary: FrameSummary): void;
  lastSeq(): number;
}

/**
 * Bob's end: it answers the leader. It holds only its own detections and learns of Alice only
 * what she sends; every field of every message is checked first.
 */
export class Follower {
  readonly clock = new StageClock();
  readonly #settings: QkdSettings;
  readonly #rx: Receiver;
  readonly #events: FollowerEvents;
  readonly #frames = new Map<number, FrameState>();
  readonly #recorded = new Map<number, Clicks>();
  /** Recent commits by frame: a resent one (its answer lost) is answered the same. */
  readonly #committed = new Map<number, { firstSeq: number; answer: CommitAnswer & { committed: true } }>();
  readonly #allowReplay: boolean;
  readonly #linkId: string;

  constructor(opts: {
    linkId: string;
    settings: QkdSettings;
    seed: Uint8Array;
    events: FollowerEvents;
    allowReplay?: boolean;
  }) {
    this.#allowReplay = opts.allowReplay === true;
    this.#linkId = opts.linkId;
    this.#settings = opts.settings;
    // A fresh receiver every run (run-secrets.ts): frame numbers restart, its randomness does not.
    const run = new RunSecrets(opts.seed);
    this.#rx = new Receiver(opts.settings.physics, run.device('receiver'));
    run.wipe();
    this.#events = opts.events;
  }

  /** The frame a message is about, which must be in `phase`. */
  #frame(body: Record<string, unknown>, op: wire.QkdOp, phase: Phase): [number, FrameState] {
    const frame = wire.int(body['frame'], 'frame');
    const state = this.#frames.get(frame);
    if (!state) throw badRequest(`frame ${frame} is unknown here (expired or never sent)`);
    if (state.phase !== phase) throw badRequest(`${op} out of order: frame ${frame} is ${state.phase}, not ${phase}`);
    return [frame, state];
  }

  #drop(frame: number): void {
    // A new frame under this number (a restarted leader counts from 0 again) is not the one committed.
    this.#committed.delete(frame);
    const s = this.#frames.get(frame);
    if (s) wipe(s.clicks?.bits, s.key, s.before, s.secret);
    s?.cascade?.wipe();
    this.#frames.delete(frame);
  }

  /** A new frame with the detections of a recorded one (the bits copied: a frame wipes its own). */
  #replay(body: Record<string, unknown>): void {
    if (!this.#allowReplay) throw badRequest('this link end does not replay recorded frames');
    const frame = wire.int(body['frame'], 'frame');
    const from = this.#recorded.get(wire.int(body['replay'], 'replay'));
    if (!from) throw badRequest('replay of a frame not recorded here');
    this.#drop(frame);
    while (this.#frames.size >= MAX_FRAMES) this.#drop(this.#frames.keys().next().value!);
    const clicks = { ...from, bits: from.bits.slice() };
    this.#frames.set(frame, { phase: 'detected', pulses: this.#settings.framePulses, clicks });
  }

  async handle(op: wire.QkdOp, message: unknown): Promise<Record<string, unknown>> {
    const body = wire.obj(message);
    switch (op) {
      case 'fibre': {
        // The simulated fibre: photons that reach Bob's detector (not a classical message).
        const frame = wire.int(body['frame'], 'frame');
        const pulses = wire.int(body['pulses'], 'pulses', 1, 2 ** 32);
        if (pulses !== this.#settings.framePulses) throw badRequest('pulses per frame differ between the two ends');
        const count = wire.int(body['count'], 'count', 0, pulses);
        const indices = wire.decodeIndices(body['indices'], count, pulses, 'indices');
        const states = wire.decodeCrumbs(body['states'], count, 'states');
        this.#drop(frame);
        while (this.#frames.size >= MAX_FRAMES) this.#drop(this.#frames.keys().next().value!);
        const clicks = this.clock.time('physics', () => this.#rx.detect(frame, pulses, { indices, states }));
        if (body['record'] === true) {
          if (!this.#allowReplay) throw badRequest('this link end does not record frames');
          if (this.#recorded.size >= MAX_RECORDED && !this.#recorded.has(frame))
            throw badRequest('too many recorded frames');
          this.#recorded.set(frame, clicks);
        } else this.#frames.set(frame, { phase: 'detected', pulses, clicks });
        return { ok: true };
      }
      case 'detections': {
        if (body['replay'] !== undefined) this.#replay(body);
        const [, state] = this.#frame(body, op, 'detected');
        const c = state.clicks!;
        return {
          count: c.count,
          indices: wire.encodeIndices(c.indices),
          bases: wire.encodeBits(c.bases, c.count),
          last_seq: this.#events.lastSeq(),
        };
      }
      case 'sifting': {
        const [, state] = this.#frame(body, op, 'detected');
        const c = state.clicks!;
        // Every field checked before anything changes.
        const match = wire.decodeBits(body['match'], c.count, 'match');
        const sifted = countOnes(match, c.count);
        const signal = wire.decodeSignalMask(body['classes'], sifted, 'classes');
        const seed = wire.int(body['sample_seed'], 'sample_seed', 0, 2 ** 32 - 1);
        const fraction = wire.num(body['sample_fraction'], 'sample_fraction', 0, 1);
        const { key, disclosed } = this.clock.time('sifting', () => {
          const kept = compress(c.bits, match, c.count).bits;
          const split = splitMasks(signal, sifted, seed, fraction);
          const parts = splitBits(kept, sifted, split);
          wipe(kept);
          return parts;
        });
        state.key = key.bits;
        state.n = key.count;
        state.phase = 'sifted';
        const bits = bitsToBytes(disclosed.bits, disclosed.count);
        wipe(disclosed.bits);
        return { bits };
      }
      case 'cascade': {
        const first = body['passes'] !== undefined;
        const [frame, state] = this.#frame(body, op, first ? 'sifted' : 'cascade');
        let questions: Uint32Array | null;
        if (first) {
          const passes = parsePasses(body['passes'], state.n!);
          try {
            state.cascade = new CascadeCorrector(state.key!, state.n!, passes);
          } catch (err) {
            throw badRequest((err as Error).message);
          }
          state.before = state.key!.slice();
          state.phase = 'cascade';
          // The first batch, every top-level block of every pass, goes without saying.
          state.asked = state.cascade.topLevelBlocks;
          return { top_level: true };
        } else {
          const answers = wire.decodeBytes(body['parities'], 'parities', (state.asked! + 7) >>> 3);
          try {
            questions = this.clock.time('cascade', () => state.cascade!.onAnswers(answers));
          } catch (err) {
            // Answers that contradict each other: Bob's key is no longer worth keeping.
            this.#drop(frame);
            throw badRequest((err as Error).message);
          }
        }
        if (questions) {
          state.asked = questions.length / 3;
          return { questions: wire.encodeU32(questions) };
        }
        delete state.asked;
        state.cascade!.wipe();
        const corrected = hammingDistance(state.before!, state.key!, state.n!);
        wipe(state.before);
        state.phase = 'reconciled';
        return { done: true, corrected };
      }
      case 'verify': {
        const [, state] = this.#frame(body, op, 'reconciled');
        const seed = wire.decodeBytes(body['seed'], 'seed', 32);
        const tag = this.clock.time('verification', () => verificationTag(state.key!, state.n!, seed));
        state.phase = 'verified';
        return { tag };
      }
      case 'amplify': {
        // The key is amplified on its own message so that 'commit', which waits for the frames
        // before it, costs no computation.
        const [frame, state] = this.#frame(body, op, 'verified');
        const n = state.n!;
        const outBits = wire.int(body['out_bits'], 'out_bits', 8, n);
        if (outBits % 8 !== 0) throw badRequest('out_bits must be a multiple of 8');
        const seed = wire.decodeBytes(body['seed'], 'seed', 32);
        const key = state.key!;
        delete state.key;
        state.phase = 'amplifying';
        const secret = await amplifyOffThread(this.clock, key, n, seed, outBits);
        // Discarded (or replaced) meanwhile: the key has nowhere to go.
        if (this.#frames.get(frame) !== state) {
          secret.fill(0);
          throw badRequest(`frame ${frame} was discarded during privacy amplification`);
        }
        state.secret = secret;
        state.phase = 'amplified';
        return { ok: true };
      }
      case 'commit':
        return this.#commit(body);
      case 'discard': {
        const frame = wire.int(body['frame'], 'frame');
        this.#drop(frame);
        this.#events.onDiscard(parseSummary(body['summary']));
        return { ok: true };
      }
    }
  }

  /** The frame's block numbers (commit.ts): taken whole, or refused with nothing changed. */
  async #commit(body: Record<string, unknown>): Promise<CommitAnswer> {
    const frame = wire.int(body['frame'], 'frame');
    const numbers = () => ({
      digest: wire.decodeBytes(body['digest'], 'digest', 32),
      firstSeq: wire.int(body['first_seq'], 'first_seq', 0),
    });
    const before = this.#committed.get(frame);
    if (before) {
      const { digest, firstSeq } = numbers();
      if (before.firstSeq === firstSeq && before.answer.digest.equals(digest)) return before.answer;
      return { committed: false, refused: 'already_committed', last_seq: this.#events.lastSeq() };
    }
    const [, state] = this.#frame(body, 'commit', 'amplified');
    const { digest, firstSeq } = numbers();
    const afterSeq = wire.int(body['after_seq'], 'after_seq', -1);
    const summary = parseSummary(body['summary']);
    const lastSeq = this.#events.lastSeq();
    // Numbers that overlap ours or skip some the leader did not know of: refused, the frame kept
    // for numbers that follow ours.
    if (afterSeq !== lastSeq || firstSeq <= afterSeq)
      return { committed: false, refused: 'out_of_sequence', last_seq: lastSeq };
    const secret = state.secret!;
    const ours = commitDigest(secret, this.#linkId, frame, firstSeq);
    delete state.secret;
    this.#drop(frame);
    if (!ours.equals(digest)) {
      secret.fill(0);
      this.#events.onDiscard({ ...summary, secretBits: 0, discarded: 'commit_digest_mismatch' });
      return { committed: false, refused: 'digest_mismatch' };
    }
    const answer = {
      committed: true as const,
      last_seq: await this.#events.onKey(firstSeq, secret, summary),
      digest: ours,
    };
    this.#committed.set(frame, { firstSeq, answer });
    while (this.#committed.size > REMEMBERED_COMMITS) this.#committed.delete(this.#committed.keys().next().value!);
    return answer;
  }

  close(): void {
    for (const frame of [...this.#frames.keys()]) this.#drop(frame);
    this.#committed.clear();
    for (const clicks of this.#recorded.values()) wipe(clicks.bits);
    this.#recorded.clear();
  }
}

function parsePasses(value: unknown, n: number): PassSpec[] {
  // No variant has more than 14 passes; each costs Bob a view and two permutations of the key's words.
  if (!Array.isArray(value) || value.length === 0 || value.length > 16)
    throw badRequest('passes must be a list of 1 to 16');
  return value.map((p: unknown) => {
    const o = wire.obj(p, 'pass');
    const blockSize = wire.int(o['blockSize'], 'blockSize', 1);
    let pass: PassSpec = { blockSize };
    if (o['shuffle'] !== undefined) {
      const seed = wire.obj(o['shuffle'], 'shuffle')['seed'];
      if (!Array.isArray(seed) || seed.length !== 4) throw badRequest('shuffle.seed must be four 32-bit words');
      pass = { blockSize, shuffle: { seed: seed.map((x: unknown) => wire.int(x, 'shuffle.seed', 0, 2 ** 32 - 1)) } };
    }
    try {
      checkPass(pass, n);
    } catch (err) {
      throw badRequest((err as Error).message);
    }
    return pass;
  });
}

function parseSummary(value: unknown): FrameSummary {
  const o = wire.obj(value, 'summary');
  const reason = o['discarded'];
  if (reason !== undefined && (typeof reason !== 'string' || !/^[a-z_]{1,40}$/.test(reason))) {
    throw badRequest('summary.discarded must be a reason code');
  }
  return {
    pulses: wire.int(o['pulses'], 'summary.pulses'),
    clicks: wire.int(o['clicks'], 'summary.clicks'),
    sifted: wire.int(o['sifted'], 'summary.sifted'),
    secretBits: wire.int(o['secretBits'], 'summary.secretBits'),
    qber: wire.num(o['qber'], 'summary.qber', 0, 1),
    efficiency: wire.num(o['efficiency'], 'summary.efficiency', 0, 1e6),
    ...(typeof reason === 'string' ? { discarded: reason } : {}),
  };
}
