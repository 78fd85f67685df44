/**
 * CPU time per frame of the QKD link's per-click post-processing steps, at each end, in one
 * process: sifting (decoding Bob's clicks and Alice's choices for them, keeping the matched ones, the split into
 * disclosed and key bits), estimation, the click-index codec and the verification tag. One
 * realistic frame (DEFAULT_QKD's channel at 25 km, 1 GHz, 10^9 pulses, as bench/qkd-link.ts) is
 * made with the real transmitter and receiver; then the steps of this build and of an older build
 * (`--old DIR`, a built checkout) run alternately on it, and the medians are printed. Both builds'
 * results are compared bit for bit (key, disclosed bits, classes, error counts, tags).
 *
 *   npm run build && node --expose-gc dist/bench/sifting-cpu.js [--old /tmp/old-qkd] [--runs 7] [--warmup 3]
 *        [--distance-km 25] [--frame-pulses 1e9]
 */
import assert from 'node:assert/strict';
import { parseArgs } from 'node:util';
import { bitsToBytes, getBit, popcount32, type Bits } from '../src/qkd/bits.js';
import { compress, countOnes, tailMask } from '../src/qkd/compress.js';
import { toeplitzHash, toeplitzSeedOf, toeplitzSeedWords } from '../src/qkd/hashing.js';
import { Prng } from '../src/qkd/prng.js';
import { keepMatching, signalMask, splitMasks } from '../src/qkd/sifting.js';
import { Receiver, type Clicks } from '../src/physics/receiver.js';
import { Transmitter } from '../src/physics/transmitter.js';
import { DEFAULT_QKD, type QkdSettings } from '../src/sources/qkd/settings.js';
import { expandSeed, verificationTag } from '../src/sources/qkd/frame-hashes.js';
import * as wire from '../src/sources/qkd/wire.js';
import { table } from './stats.js';

const { values: opt } = parseArgs({
  options: {
    old: { type: 'string', default: '/tmp/old-qkd' },
    runs: { type: 'string', default: '7' },
    warmup: { type: 'string', default: '3' },
    'distance-km': { type: 'string', default: '25' },
    'frame-pulses': { type: 'string', default: '1e9' },
  },
});
const settings: QkdSettings = {
  ...DEFAULT_QKD,
  framePulses: Number(opt['frame-pulses']),
  physics: { ...DEFAULT_QKD.physics, distanceKm: Number(opt['distance-km']), repetitionRateHz: 1e9 },
};
const N = settings.framePulses;
const fraction = settings.sampleFraction;
const seedA = Buffer.alloc(32, 0xa1);
const seedB = Buffer.alloc(32, 0xb2);

/* eslint-disable @typescript-eslint/no-explicit-any -- the old build's modules, loaded by path */
const old = {
  sifting: (await import(`${opt.old}/dist/src/qkd/sifting.js`)) as any,
  hashing: (await import(`${opt.old}/dist/src/qkd/hashing.js`)) as any,
  wire: (await import(`${opt.old}/dist/src/sources/qkd/wire.js`)) as any,
  tx: new (await import(`${opt.old}/dist/src/physics/transmitter.js`)).Transmitter(settings.physics, seedA) as any,
};

const tx = new Transmitter(settings.physics, seedA);
const FRAME = 3;
const clicks: Clicks = new Receiver(settings.physics, seedB).detect(FRAME, N, tx.emit(FRAME, N));
const m = clicks.count;
const sampleSeed = 0x5eed;
const tagSeed = Buffer.alloc(32, 0x7a);

type Times = Record<string, number>;
const cpu = (times: Times, step: string, f: () => void) => {
  const t = process.cpuUsage();
  f();
  const d = process.cpuUsage(t);
  times[step] = (times[step] ?? 0) + (d.user + d.system) / 1000;
};
const gc = (globalThis as { gc?: () => void }).gc ?? (() => {});

/** What both builds must agree on. */
interface Outcome {
  key: Bits;
  n: number;
  disclosedA: Bits;
  disclosedB: Buffer;
  classes: Buffer;
  errors: number[];
  compared: number[];
  tag: Buffer;
  keyB: Bits;
  sifted: number;
}

function oldFrame(alice: Times, bob: Times, matrix: Uint32Array): Outcome {
  const o = {} as Outcome;
  let det: { indices: Buffer; bases: Buffer } | undefined;
  let sift: any;
  let bobBits: Buffer | undefined;
  gc();
  cpu(bob, 'index codec', () => {
    det = { indices: old.wire.encodeIndices(clicks.indices), bases: old.wire.encodeBits(clicks.bases, m) };
  });
  cpu(alice, 'decode clicks + choices', () => {
    sift = { clicks: old.wire.decodeIndices(det!.indices, m, N, 'indices'), bob: old.wire.decodeBits(det!.bases, m) };
  });
  cpu(alice, 'decode clicks + choices', () => (sift.alice = old.tx.choicesAt(FRAME, sift.clicks)));
  cpu(alice, 'keep matching', () => {
    sift.match = old.sifting.matchBits(sift.alice.bases, sift.bob, m);
    Object.assign(sift, old.sifting.keepMatching(sift.match, m, sift.alice.bits, sift.alice.classes));
  });
  cpu(alice, 'split', () => {
    sift.parts = old.sifting.splitKept(sift.keptBits, sift.classes, sampleSeed, fraction);
    sift.classBytes = old.wire.encodeCrumbs(sift.classes);
  });
  const msg = { match: old.wire.encodeBits(sift.match, m) };
  gc();
  let bobKept: any;
  cpu(bob, 'keep matching', () => {
    bobKept = old.sifting.keepMatching(old.wire.decodeBits(msg.match, m, 'match'), m, clicks.bits);
  });
  cpu(bob, 'split', () => {
    const classes = old.wire.decodeCrumbs(sift.classBytes, bobKept.kept.length, 'classes', 2);
    const parts = old.sifting.splitKept(bobKept.keptBits, classes, sampleSeed, fraction);
    bobBits = bitsToBytes(parts.disclosedBits, parts.disclosed.length);
    o.keyB = parts.key;
  });
  cpu(alice, 'estimation', () => {
    const theirs = old.wire.decodeBits(bobBits, sift.parts.disclosed.length, 'bits');
    o.compared = [0, 0, 0];
    o.errors = [0, 0, 0];
    const { disclosed, disclosedBits } = sift.parts;
    for (let i = 0; i < disclosed.length; i++) {
      const c = sift.classes[disclosed[i]]!;
      o.compared[c]! += 1;
      if (getBit(disclosedBits, i) !== getBit(theirs, i)) o.errors[c]! += 1;
    }
  });
  const n: number = sift.parts.n;
  // The old protocol sent the whole matrix: drawn, encoded, decoded and applied at each end.
  let seedBytes: Buffer | undefined;
  cpu(alice, 'verification', () => {
    const words = new Prng([1, 2, 3, 4]).fill(new Uint32Array(old.hashing.toeplitzSeedWords(n, 64)));
    seedBytes = old.wire.encodeU32(words);
    old.hashing.toeplitzHash(sift.parts.key, n, words);
  });
  cpu(bob, 'verification', () => {
    const words = old.wire.decodeU32(seedBytes, 'seed', old.hashing.toeplitzSeedWords(n, 64));
    old.hashing.toeplitzHash(o.keyB, n, words);
  });
  Object.assign(o, { key: sift.parts.key, n, disclosedA: sift.parts.disclosedBits, disclosedB: bobBits });
  o.classes = sift.classBytes;
  o.sifted = sift.kept.length;
  o.tag = old.hashing.toeplitzHash(sift.parts.key, n, matrix);
  return o;
}

function newFrame(alice: Times, bob: Times): Outcome {
  const o = {} as Outcome;
  let det: { indices: Buffer; bases: Buffer } | undefined;
  let bobBases: Bits | undefined;
  gc();
  cpu(bob, 'index codec', () => {
    det = { indices: wire.encodeIndices(clicks.indices), bases: wire.encodeBits(clicks.bases, m) };
  });
  let choices: ReturnType<Transmitter['choicesAt']> | undefined;
  cpu(alice, 'decode clicks + choices', () => {
    bobBases = wire.decodeBits(det!.bases, m, 'bases');
    choices = tx.choicesAt(FRAME, wire.decodeIndices(det!.indices, m, N, 'indices'));
  });
  let kept: ReturnType<typeof keepMatching> | undefined;
  cpu(alice, 'keep matching', () => (kept = keepMatching(choices!, bobBases!, m)));
  o.sifted = kept!.count;
  let split: ReturnType<typeof splitMasks> | undefined;
  let disclosed: ReturnType<typeof compress> | undefined;
  cpu(alice, 'split', () => {
    split = splitMasks(signalMask(kept!.decoys, kept!.vacuums, kept!.count), kept!.count, sampleSeed, fraction);
    const key = compress(kept!.bits, split.key, kept!.count);
    [o.key, o.n] = [key.bits, key.count];
    disclosed = compress(kept!.bits, split.disclosed, kept!.count);
    o.classes = wire.encodeClasses(kept!.decoys, kept!.vacuums, kept!.count);
  });
  const msg = { match: wire.encodeBits(kept!.match, m) };
  gc();
  let bobKept: { signal: Bits; sifted: number; bits: Bits } | undefined;
  cpu(bob, 'keep matching', () => {
    const match = wire.decodeBits(msg.match, m, 'match');
    const sifted = countOnes(match, m);
    bobKept = {
      sifted,
      signal: wire.decodeSignalMask(o.classes, sifted, 'classes'),
      bits: compress(clicks.bits, match, m).bits,
    };
  });
  cpu(bob, 'split', () => {
    const { sifted, signal, bits } = bobKept!;
    const s = splitMasks(signal, sifted, sampleSeed, fraction);
    o.keyB = compress(bits, s.key, sifted).bits;
    const d = compress(bits, s.disclosed, sifted);
    o.disclosedB = bitsToBytes(d.bits, d.count);
  });
  cpu(alice, 'estimation', () => {
    const theirs = wire.decodeBits(o.disclosedB, disclosed!.count, 'bits');
    const sifted = kept!.count;
    const decoys = compress(kept!.decoys, split!.disclosed, sifted).bits;
    const vacuums = compress(kept!.vacuums, split!.disclosed, sifted).bits;
    o.errors = [0, 0, 0];
    for (let w = 0; w < disclosed!.bits.length; w++) {
      const diff = (disclosed!.bits[w]! ^ theirs[w]!) & tailMask(disclosed!.count, w);
      o.errors[1]! += popcount32(diff & decoys[w]!);
      o.errors[2]! += popcount32(diff & vacuums[w]!);
      o.errors[0]! += popcount32(diff & ~(decoys[w]! | vacuums[w]!));
    }
    o.compared = [split!.sampled, countOnes(kept!.decoys, sifted), countOnes(kept!.vacuums, sifted)];
  });
  o.disclosedA = disclosed!.bits;
  cpu(alice, 'verification', () => (o.tag = verificationTag(o.key, o.n, tagSeed)));
  cpu(bob, 'verification', () => verificationTag(o.keyB, o.n, tagSeed));
  return o;
}

const runs = Number(opt.runs);
const samples = {
  old: { alice: [] as Times[], bob: [] as Times[] },
  new: { alice: [] as Times[], bob: [] as Times[] },
};
let checked = false;
const shape = { sifted: 0, n: 0 };
for (let r = -Number(opt.warmup); r < runs; r++) {
  // The first runs warm both builds' code up (a link runs these every frame) and are not counted.
  const [oa, ob, na, nb]: Times[] = [{}, {}, {}, {}] as [Times, Times, Times, Times];
  const fresh = newFrame(na, nb);
  const matrix = toeplitzSeedOf(expandSeed(tagSeed, 4 * toeplitzSeedWords(fresh.n, 64), 0x76657269), fresh.n);
  const before = oldFrame(oa, ob, matrix);
  if (!checked) {
    assert.deepEqual([fresh.sifted, fresh.n], [before.sifted, before.n], 'sifted and key lengths');
    assert.deepEqual(fresh.key, before.key, "Alice's key");
    assert.deepEqual(fresh.keyB, before.keyB, "Bob's key");
    assert.deepEqual(fresh.disclosedA, before.disclosedA, "Alice's disclosed bits");
    assert.deepEqual(fresh.disclosedB, before.disclosedB, "Bob's disclosed bits");
    assert.deepEqual(fresh.classes, before.classes, 'classes on the wire');
    assert.deepEqual([fresh.errors, fresh.compared], [before.errors, before.compared], 'estimation counts');
    assert.deepEqual(fresh.tag, before.tag, 'the tag under the same matrix');
    assert.deepEqual(toeplitzHash(fresh.key, fresh.n, matrix), fresh.tag);
    checked = true;
    shape.n = fresh.n;
    shape.sifted = fresh.sifted;
  }
  if (r >= 0) {
    samples.old.alice.push(oa);
    samples.old.bob.push(ob);
    samples.new.alice.push(na);
    samples.new.bob.push(nb);
  }
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const steps = ['index codec', 'decode clicks + choices', 'keep matching', 'split', 'estimation', 'verification'];
const rows: string[][] = [];
for (const end of ['alice', 'bob'] as const) {
  const totals = { old: 0, new: 0 };
  for (const step of steps) {
    if (!(step in samples.old[end][0]!)) continue;
    const o = median(samples.old[end].map((t) => t[step]!));
    const nw = median(samples.new[end].map((t) => t[step]!));
    totals.old += o;
    totals.new += nw;
    rows.push([end === 'alice' ? 'Alice (leader)' : 'Bob (follower)', step, o.toFixed(1), nw.toFixed(1)]);
  }
  const sums = (k: 'old' | 'new') =>
    median(samples[k][end].map((t) => steps.reduce((a, s) => a + (t[s] ?? 0), 0))).toFixed(1);
  rows.push([`**${end === 'alice' ? 'Alice' : 'Bob'}**`, '**sum** (median of sums)', sums('old'), sums('new')]);
}
console.log(`node --expose-gc dist/bench/sifting-cpu.js ${process.argv.slice(2).join(' ')}`);
console.log(
  `one frame: ${N} pulses, ${opt['distance-km']} km; ${m} clicks, ${shape.sifted} sifted, ${shape.n} key bits; ` +
    `old build ${opt.old}; median CPU ms per frame of ${runs} runs, builds alternating; results identical: ${checked}\n`,
);
console.log(table(['end', 'step', 'old ms', 'new ms'], rows));
