import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { CascadeResponder } from '../../src/qkd/cascade.js';
import { planPasses, type PassSpec } from '../../src/qkd/cascade-plan.js';
import { paddedLength } from '../../src/qkd/cascade-shuffle.js';
import { Prng } from '../../src/qkd/prng.js';
import { compress } from '../../src/qkd/compress.js';
import { keepMatching, signalMask, splitMasks } from '../../src/qkd/sifting.js';
import { Transmitter } from '../../src/physics/transmitter.js';
import { Follower } from '../../src/sources/qkd/follower.js';
import { verificationTag } from '../../src/sources/qkd/frame-hashes.js';
import { StageClock } from '../../src/sources/qkd/stages.js';
import * as wire from '../../src/sources/qkd/wire.js';
import { qkdSettings } from '../helpers/qkd-pair.js';

const settings = qkdSettings({ distanceKm: 5 }, { framePulses: 10_000_000 });
const is400 = (pattern: RegExp) => (err: unknown) => {
  assert.equal((err as { status?: number }).status, 400);
  assert.match((err as Error).message, pattern);
  return true;
};

/** Bob's end with one frame detected, and what Alice would send it for sifting. */
async function frameAtBob() {
  const tx = new Transmitter(settings.physics, Buffer.alloc(32, 0xa1));
  const events = { onKey: async () => -1, onDiscard: () => {}, lastSeq: () => -1 };
  const bob = new Follower({ linkId: 'link-a-b', settings, seed: Buffer.alloc(32, 0xb0), events });
  const N = settings.framePulses;
  const arrivals = tx.emit(1, N);
  const fibre = {
    frame: 1,
    pulses: N,
    count: arrivals.indices.length,
    indices: wire.encodeIndices(arrivals.indices),
    states: wire.encodeCrumbs(arrivals.states),
  };
  await bob.handle('fibre', fibre);
  const det = await bob.handle('detections', { frame: 1 });
  const m = det['count'] as number;
  const clicks = wire.decodeIndices(det['indices'], m, N, 'indices');
  const kept = keepMatching(tx.choicesAt(1, clicks), wire.decodeBits(det['bases'], m, 'bases'), m);
  const sifting = {
    frame: 1,
    match: wire.encodeBits(kept.match, m),
    classes: wire.encodeClasses(kept.decoys, kept.vacuums, kept.count),
    sample_seed: 77,
    sample_fraction: 0.05,
  };
  return { bob, kept, sifting };
}

describe('QKD sifting and verification messages at Bob', () => {
  it('refuses malformed sifting fields with a 400 and changes nothing; then sifts as Alice does', async () => {
    const { bob, kept, sifting } = await frameAtBob();
    const classes = Buffer.from(sifting.classes);
    const bad: Array<[Record<string, unknown>, RegExp]> = [
      [{ match: sifting.match.subarray(1) }, /match must hold/],
      [{ classes: classes.subarray(1) }, /classes must hold/],
      [{ classes: Buffer.from(classes).fill(0xff, 0, 1) }, /above 2/],
      [{ sample_seed: -1 }, /sample_seed/],
      [{ sample_fraction: 1.5 }, /sample_fraction/],
      [{ classes: 'not bytes' }, /byte field/],
    ];
    if (kept.count & 3) {
      const padded = Buffer.from(classes);
      padded[padded.length - 1]! |= 0x40;
      bad.push([{ classes: padded }, /padding/]);
    }
    for (const [over, pattern] of bad) {
      await assert.rejects(bob.handle('sifting', { ...sifting, ...over }), is400(pattern));
    }
    await assert.rejects(
      bob.handle('verify', { frame: 1, seed: Buffer.alloc(32) }),
      is400(/verify out of order: frame 1 is detected, not reconciled/),
    );
    // Alice's split, from the same public seed: Bob discloses his bits at exactly her positions.
    const reply = await bob.handle('sifting', sifting);
    const split = splitMasks(signalMask(kept.decoys, kept.vacuums, kept.count), kept.count, 77, 0.05);
    const ours = compress(kept.bits, split.disclosed, kept.count);
    const theirs = wire.decodeBits(reply['bits'], ours.count, 'bits');
    let differ = 0;
    for (let i = 0; i < ours.count; i++) differ += ((ours.bits[i >>> 5]! ^ theirs[i >>> 5]!) >>> (i & 31)) & 1;
    assert.ok(ours.count > 1000 && differ / ours.count < 0.1, `${differ} of ${ours.count} disclosed bits differ`);
    bob.close();
  });

  it('answers that send a search into the padding are a 400, and the frame is dropped', async () => {
    const { bob, kept, sifting } = await frameAtBob();
    await bob.handle('sifting', sifting);
    const split = splitMasks(signalMask(kept.decoys, kept.vacuums, kept.count), kept.count, 77, 0.05);
    const n = compress(kept.bits, split.key, kept.count).count;
    const passes = [{ blockSize: n }, { blockSize: 1, shuffle: { seed: [5, 6, 7, 8] } }];
    let reply = await bob.handle('cascade', { frame: 1, passes });
    assert.equal(reply['top_level'], true);
    // "Odd" for every question: one-bit blocks over the padded order then name padding bits.
    let asked = 1 + paddedLength(n);
    const refused = (async () => {
      for (let round = 0; round < 64; round++) {
        reply = await bob.handle('cascade', { frame: 1, parities: Buffer.alloc((asked + 7) >>> 3, 0xff) });
        asked = wire.decodeU32(reply['questions'], 'questions', 2 ** 24).length / 3;
      }
    })();
    await assert.rejects(refused, is400(/Cascade answers are inconsistent/));
    await assert.rejects(bob.handle('verify', { frame: 1, seed: Buffer.alloc(32) }), is400(/frame 1 is unknown here/));
  });

  it('verification takes a 32-byte seed, once, after Cascade: then the tags of both ends agree', async () => {
    const { bob, kept, sifting } = await frameAtBob();
    await bob.handle('sifting', sifting);
    await assert.rejects(
      bob.handle('verify', { frame: 1, seed: Buffer.alloc(32) }),
      is400(/is sifted, not reconciled/),
    );
    // Alice's key, from the same public split; Cascade brings Bob's to it.
    const split = splitMasks(signalMask(kept.decoys, kept.vacuums, kept.count), kept.count, 77, 0.05);
    const key = compress(kept.bits, split.key, kept.count);
    const passes = planPasses('yanetal', 0.02, key.count, new Prng([1, 2, 3, 4]));
    const alice = new CascadeResponder(key.bits.slice(), key.count);
    alice.addPasses(passes);
    const [first, second] = passes as [PassSpec, PassSpec];
    for (const [bad, pattern] of [
      [[], /passes must be a list/],
      [Array<PassSpec>(17).fill(first), /passes must be a list of 1 to 16/],
      [[{ ...first, blockSize: 0 }], /blockSize must be/],
      [[first, { ...second, shuffle: { seed: [1, 2, 3] } }], /shuffle.seed must be four/],
      [[first, { ...second, shuffle: { seed: [1, 2, 3, 2 ** 32] } }], /shuffle.seed must be an integer/],
      [[first, { ...second, shuffle: 'x' }], /shuffle must be/],
    ] as const) {
      await assert.rejects(bob.handle('cascade', { frame: 1, passes: bad }), is400(pattern));
    }
    let reply = await bob.handle('cascade', { frame: 1, passes });
    while (reply['done'] !== true) {
      const parities =
        reply['top_level'] === true
          ? alice.answerTopLevel()
          : alice.answer(wire.decodeU32(reply['questions'], 'questions', 2 ** 24));
      reply = await bob.handle('cascade', { frame: 1, parities });
    }
    for (const seed of [Buffer.alloc(31), Buffer.alloc(33), Buffer.alloc(0), 'x']) {
      await assert.rejects(bob.handle('verify', { frame: 1, seed }), is400(/seed must/));
    }
    const seed = Buffer.alloc(32, 9);
    const tag = (await bob.handle('verify', { frame: 1, seed }))['tag'] as Buffer;
    assert.equal(tag.length, 8);
    assert.deepEqual(tag, verificationTag(key.bits, key.count, seed), "Bob's tag is Alice's");
    await assert.rejects(bob.handle('verify', { frame: 1, seed }), is400(/is verified, not reconciled/));
    assert.notDeepEqual(verificationTag(key.bits, key.count, Buffer.alloc(32, 8)), tag, 'another seed, another tag');
    const flipped = key.bits.slice();
    flipped[3]! ^= 1 << 7;
    assert.notDeepEqual(verificationTag(flipped, key.count, seed), tag, 'another key, another tag');
    bob.close();
  });
});

describe('stage clock', () => {
  // What the design guarantees, whatever else the machine runs: calls read on the CPU clock (long
  // ones, and one short call in sixteen) count no more CPU than the process used; the other short
  // calls count their wall time scaled by the sampled calls' CPU share, so never more than their
  // wall time; and time spent waiting, not computing, is not counted as work.
  const cpuMs = (since: NodeJS.CpuUsage) => {
    const d = process.cpuUsage(since);
    return (d.user + d.system) / 1000;
  };
  /** Burns `ms` of this process's CPU time, however long that takes on a busy machine. */
  const burn = (ms: number) => {
    const from = process.cpuUsage();
    while (cpuMs(from) < ms);
  };
  const cell = new Int32Array(new SharedArrayBuffer(4));
  /** Blocks this thread for `ms` without using CPU. */
  const block = (ms: number) => Atomics.wait(cell, 0, 0, ms);

  it('counts the CPU time of long calls exactly, and of short ones no more than their wall time', () => {
    const clock = new StageClock();
    const before = process.cpuUsage();
    const shortStart = performance.now();
    for (let i = 0; i < 400; i++) clock.time('cascade', () => burn(0.1));
    const shortWall = performance.now() - shortStart;
    for (let i = 0; i < 5; i++) clock.time('sifting', () => burn(5));
    const total = cpuMs(before);
    assert.ok(clock.ms.sifting >= 25, `long calls: ${clock.ms.sifting} ms, at least the 25 ms they burned`);
    assert.ok(clock.ms.sifting <= total, `long calls: ${clock.ms.sifting} ms within the ${total} ms of CPU used`);
    // 25 of the 400 short calls are read on the CPU clock, each burning at least 0.1 ms.
    assert.ok(clock.ms.cascade >= 2.5, `short calls: ${clock.ms.cascade} ms`);
    assert.ok(clock.ms.cascade <= shortWall * 1.1 + 1, `short calls: ${clock.ms.cascade} ms within ${shortWall} ms`);
  });

  it('does not count waiting as work, in long calls or in short ones', () => {
    const clock = new StageClock();
    const longStart = performance.now();
    for (let i = 0; i < 5; i++) clock.time('estimation', () => block(20));
    const longWall = performance.now() - longStart;
    const shortStart = performance.now();
    for (let i = 0; i < 160; i++) clock.time('amplification', () => block(1));
    const shortWall = performance.now() - shortStart;
    assert.ok(clock.ms.estimation < longWall / 4, `long waits: ${clock.ms.estimation} ms of ${longWall} ms`);
    assert.ok(clock.ms.amplification < shortWall / 4, `short waits: ${clock.ms.amplification} ms of ${shortWall} ms`);
  });
});
