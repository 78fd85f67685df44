import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { getBit } from '../../src/qkd/bits.js';
import { Receiver } from '../../src/physics/receiver.js';
import { Transmitter } from '../../src/physics/transmitter.js';
import { SIGNAL } from '../../src/physics/link-model.js';
import type { QkdOp } from '../../src/sources/qkd/wire.js';
import { qkdPair, qkdSettings } from '../helpers/qkd-pair.js';
import { describeKeySourceConformance } from './key-source-conformance.js';

// Ideal detectors (no dead time, no afterpulses) keep these small frames productive: the protocol is
// tested here, the detectors in test/qkd/physics.test.ts.
const IDEAL = { deadTimeUs: 0, afterpulseProbability: 0 };
const FAST = qkdSettings({ distanceKm: 5, ...IDEAL }, { framePulses: 10_000_000 });

describeKeySourceConformance('QKD link simulator', () => {
  const { leader, follower } = qkdPair(FAST);
  return {
    ends: [leader, follower],
    waitFor: async (seq) => {
      // The link runs from the first wait (a pair only described is never started).
      leader.open();
      follower.open();
      const deadline = Date.now() + 60_000;
      while (leader.newestSeq < seq || follower.newestSeq < seq) {
        if (Date.now() > deadline) throw new Error('the link produced too little');
        await new Promise((r) => setTimeout(r, 20));
      }
    },
  };
});

/** Runs a pair until `frames` frames have finished; returns both ends' blocks. */
async function runPair(settings: ReturnType<typeof qkdSettings>, frames: number) {
  const { leader, follower } = qkdPair(settings);
  const got: [Buffer[], Buffer[]] = [[], []];
  leader.start(null, async (blocks) => void got[0].push(...blocks.map((b) => Buffer.from(b.bytes))));
  follower.start(null, async (blocks) => void got[1].push(...blocks.map((b) => Buffer.from(b.bytes))));
  const deadline = Date.now() + 120_000;
  while (follower.stats.framesSeen < frames || leader.stats.framesSeen < frames) {
    if (Date.now() > deadline) throw new Error('frames did not finish');
    await new Promise((r) => setTimeout(r, 20));
  }
  await leader.stop();
  await follower.stop();
  return { leader, follower, got };
}

describe('QKD link simulator', () => {
  it('both ends always hold identical keys, or the frame is discarded at both', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.record({
          distanceKm: fc.double({ min: 0, max: 60, noNaN: true }),
          misalignment: fc.double({ min: 0, max: 0.14, noNaN: true }),
          eveFraction: fc.constantFrom(0, 0, 0.2, 1),
          cascade: fc.constantFrom('original' as const, 'yanetal' as const, 'pow2' as const),
        }),
        async ({ cascade, ...physics }) => {
          const { leader, follower, got } = await runPair(qkdSettings(physics, { framePulses: 5_000_000, cascade }), 3);
          const [a, b] = [leader.info().stats!, follower.info().stats!];
          const common = Math.min(got[0].length, got[1].length);
          for (let i = 0; i < common; i++) assert.ok(got[0][i]!.equals(got[1][i]!), `block ${i} identical`);
          assert.ok(common > 0 || leader.newestSeq === -1);
          assert.equal(leader.newestSeq, follower.newestSeq, 'the same blocks made at both ends');
          assert.equal(a.framesDone, b.framesDone);
          assert.deepEqual(a.discardReasons, b.discardReasons);
          if (physics.misalignment > 0.12 || physics.eveFraction === 1) assert.equal(got[0].length, 0, 'no key');
        },
      ),
      { numRuns: 12 },
    );
  });

  it('the follower takes each message of a frame once, in order; resent or early ones change nothing', async () => {
    const { leader, follower } = qkdPair(FAST);
    const handle = follower.handle.bind(follower);
    const refused: string[] = [];
    const attempt = async (op: QkdOp, body: Record<string, unknown>) => {
      const answer = await handle(op, body).then(
        () => 'answered',
        (err: Error) => err.message,
      );
      refused.push(`${op}: ${answer}`);
    };
    let sifting: Record<string, unknown> | undefined;
    let tried = false;
    follower.handle = async (op, message) => {
      const body = message as Record<string, unknown>;
      const frame = { link_ID: body['link_ID'], frame: body['frame'] };
      // One frame is tried: the first to reach sifting (others run alongside, untouched).
      if (op === 'sifting') sifting ??= body;
      if (tried || body['frame'] !== sifting?.['frame'] || !['cascade', 'verify', 'amplify'].includes(op))
        return handle(op, message);
      if (op === 'cascade' && body['passes'] !== undefined)
        await attempt('amplify', { ...frame, seed: Buffer.alloc(32), out_bits: 256 });
      if (op === 'amplify') await attempt('commit', { ...frame, first_seq: 0 });
      const answer = await handle(op, message);
      if (op === 'verify') {
        await attempt('sifting', sifting!);
        await attempt('verify', body);
      }
      if (op === 'amplify') {
        await attempt('amplify', body);
        tried = true;
      }
      return answer;
    };
    const got: [Buffer[], Buffer[]] = [[], []];
    leader.start(null, async (blocks) => void got[0].push(...blocks.map((b) => Buffer.from(b.bytes))));
    follower.start(null, async (blocks) => void got[1].push(...blocks.map((b) => Buffer.from(b.bytes))));
    while (got[0].length < 2000 || got[1].length < 2000) await new Promise((r) => setTimeout(r, 20));
    await Promise.all([leader.stop(), follower.stop()]);
    assert.equal(refused.length, 5);
    assert.match(refused[0]!, /^amplify: amplify out of order: frame \d+ is sifted, not verified/);
    assert.match(refused[1]!, /^sifting: sifting out of order: frame \d+ is verified, not detected/);
    assert.match(refused[2]!, /^verify: verify out of order: frame \d+ is verified, not reconciled/);
    assert.match(refused[3]!, /^commit: commit out of order: frame \d+ is verified, not amplified/);
    assert.match(refused[4]!, /^amplify: amplify out of order: frame \d+ is amplified, not verified/);
    for (let i = 0; i < 2000; i++) assert.ok(got[0][i]!.equals(got[1][i]!), `block ${i} identical`);
  });

  it('records and replays frames only where a benchmark allowed it: a KME never repeats keys', async () => {
    const kme = qkdPair(FAST);
    kme.follower.open();
    await assert.rejects(kme.leader.recordAhead(1), /does not record frames/);
    const bench = qkdPair(FAST, { allowReplay: true });
    bench.follower.open();
    await bench.leader.recordAhead(1);
    await assert.rejects(
      kme.follower.handle('detections', { link_ID: 'link-a-b', frame: 5, replay: 0 }),
      /does not replay recorded frames/,
    );
    await Promise.all([kme.leader, kme.follower, bench.leader, bench.follower].map((end) => end.stop()));
  });

  it('an intercept-resend eavesdropper shows as 25% errors on what she attacked', () => {
    const physics = { ...FAST.physics, misalignment: 0.01, eveFraction: 0.4 };
    const tx = new Transmitter(physics, Buffer.alloc(32, 1));
    const rx = new Receiver(physics, Buffer.alloc(32, 2));
    const N = 20_000_000;
    const clicks = rx.detect(0, N, tx.emit(0, N));
    const tally = { attacked: [0, 0], clean: [0, 0] };
    for (let j = 0; j < clicks.count; j++) {
      const index = clicks.indices[j]!;
      const alice = tx.pulse(0, index);
      if (alice.intensity !== SIGNAL || alice.basis !== getBit(clicks.bases, j)) continue;
      const t = tx.attack(0, index).attacked ? tally.attacked : tally.clean;
      t[0]!++;
      if (alice.bit !== getBit(clicks.bits, j)) t[1]!++;
    }
    const attacked = tally.attacked[1]! / tally.attacked[0]!;
    const clean = tally.clean[1]! / tally.clean[0]!;
    assert.ok(tally.attacked[0]! > 5000);
    assert.ok(Math.abs(attacked - 0.25 - 0.005) < 0.02, `QBER on the attacked pulses ${attacked}`);
    assert.ok(clean < 0.02, `QBER elsewhere ${clean}`);
  });

  it('the eavesdropper on every pulse stops key production; without her the link makes keys', async () => {
    const eve = await runPair(
      qkdSettings({ distanceKm: 5, misalignment: 0, eveFraction: 1 }, { framePulses: 5_000_000 }),
      3,
    );
    const s = eve.leader.info().stats!;
    assert.equal(eve.got[0].length + eve.got[1].length, 0);
    assert.equal(s.secretBps, 0);
    assert.equal(s.framesDone, 0);
    assert.ok((s.discardReasons['qber_above_threshold'] ?? 0) >= 3);
    assert.ok(Math.abs(s.qber - 0.25) < 0.03, `measured QBER ${s.qber}`);
    const clean = await runPair(FAST, 3);
    assert.ok(clean.got[0].length > 0 && clean.leader.info().stats!.secretBps > 0);
    assert.ok(clean.leader.info().stats!.qber < 0.05);
  });

  it('reports rates, QBER and efficiency; rates fall with distance', async () => {
    const near = (
      await runPair(qkdSettings({ distanceKm: 5, ...IDEAL }, { framePulses: 10_000_000 }), 3)
    ).leader.info();
    const far = (
      await runPair(qkdSettings({ distanceKm: 50, ...IDEAL }, { framePulses: 10_000_000 }), 3)
    ).leader.info();
    const [n, f] = [near.stats!, far.stats!];
    assert.equal(near.kind, 'qkd-simulator');
    assert.ok(n.rawBps > n.siftedBps && n.siftedBps > n.secretBps && n.secretBps > 0);
    assert.ok(Math.abs(n.siftedBps / n.rawBps - 0.5) < 0.05, 'half the detections survive sifting');
    assert.ok(n.reconciliationEfficiency > 1 && n.reconciliationEfficiency < 1.4);
    assert.ok(f.rawBps < n.rawBps / 5, 'about 45 km more fibre: 9.5 dB less light');
    assert.ok(f.qber > n.qber - 0.005);
  });
});
