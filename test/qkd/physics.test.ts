import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { getBit } from '../../src/qkd/bits.js';
import { expected } from '../../src/qkd/decoy.js';
import { DECOY, SIGNAL, VACUUM } from '../../src/physics/link-model.js';
import { Receiver } from '../../src/physics/receiver.js';
import { Transmitter } from '../../src/physics/transmitter.js';
import { matchBits, matchingClicks, onesOf } from '../../src/qkd/sifting.js';
import { DEFAULT_QKD } from '../../src/sources/qkd/settings.js';

describe('physics model', () => {
  it('gains and error rates by intensity match the channel model of Ma et al. (eqs. 6–7)', () => {
    const physics = { ...DEFAULT_QKD.physics, distanceKm: 40, darkCountProbability: 1e-5 };
    const N = 40_000_000;
    const tx = new Transmitter(physics, Buffer.alloc(32, 3));
    const clicks = new Receiver(physics, Buffer.alloc(32, 4)).detect(7, N, tx.emit(7, N));
    const by = [SIGNAL, DECOY, VACUUM].map(() => ({ clicks: 0, sifted: 0, errors: 0 }));
    for (let j = 0; j < clicks.count; j++) {
      const a = tx.pulse(7, clicks.indices[j]!);
      const t = by[a.intensity]!;
      t.clicks++;
      if (a.basis !== getBit(clicks.bases, j)) continue;
      t.sifted++;
      if (a.bit !== getBit(clicks.bits, j)) t.errors++;
    }
    const pulses = [physics.pSignal, physics.pDecoy, 1 - physics.pSignal - physics.pDecoy].map((p) => p * N);
    [physics.mu, physics.nu, 0].forEach((mu, k) => {
      const model = expected(physics, mu);
      const gain = by[k]!.clicks / pulses[k]!;
      const sigma = Math.sqrt(by[k]!.clicks) / pulses[k]!;
      assert.ok(
        Math.abs(gain - model.gain) < 5 * sigma + 0.002 * model.gain,
        `class ${k}: gain ${gain} vs ${model.gain}`,
      );
      const qber = by[k]!.errors / by[k]!.sifted;
      const qSigma = Math.sqrt((model.qber * (1 - model.qber)) / by[k]!.sifted);
      assert.ok(Math.abs(qber - model.qber) < 5 * qSigma, `class ${k}: QBER ${qber} vs ${model.qber}`);
    });
    assert.ok(Math.abs(by[SIGNAL]!.sifted / by[SIGNAL]!.clicks - 0.5) < 0.01, 'bases match half the time');
  });

  it('is reproducible from its seeds, and another seed gives another frame', () => {
    const p = DEFAULT_QKD.physics;
    const a = new Transmitter(p, Buffer.alloc(32, 1)).emit(3, 1_000_000);
    const b = new Transmitter(p, Buffer.alloc(32, 1)).emit(3, 1_000_000);
    const c = new Transmitter(p, Buffer.alloc(32, 2)).emit(3, 1_000_000);
    assert.deepEqual(a, b);
    assert.notDeepEqual(a.indices, c.indices);
  });

  it("looks up Alice's choices for a click list exactly as pulse by pulse, and matches bases bitwise", () => {
    const physics = { ...DEFAULT_QKD.physics, distanceKm: 10 };
    const tx = new Transmitter(physics, Buffer.alloc(32, 5));
    const rx = new Receiver(physics, Buffer.alloc(32, 6)).detect(3, 200_000, tx.emit(3, 200_000));
    const got = tx.choicesAt(3, rx.indices);
    assert.ok(rx.count > 100);
    for (let j = 0; j < rx.count; j++) {
      const a = tx.pulse(3, rx.indices[j]!);
      const intensity = getBit(got.decoys, j) ? DECOY : getBit(got.vacuums, j) ? VACUUM : SIGNAL;
      assert.deepEqual([getBit(got.bits, j), getBit(got.bases, j), intensity], [a.bit, a.basis, a.intensity]);
      assert.equal(getBit(got.decoys, j) & getBit(got.vacuums, j), 0);
      const packed = tx.packed(3, rx.indices[j]!);
      assert.deepEqual([packed & 1, (packed >>> 1) & 1, packed >>> 2], [a.bit, a.basis, a.intensity]);
    }
    const counts = [SIGNAL, DECOY, VACUUM].map(
      (c) => [...rx.indices].filter((i) => tx.pulse(3, i).intensity === c).length,
    );
    assert.deepEqual(got.counts, counts);
    // Lengths that are not whole words, and none.
    for (const m of [0, 1, 31, 33]) {
      const part = tx.choicesAt(3, rx.indices.subarray(0, m));
      assert.equal(part.bases.length, Math.ceil(m / 32));
      for (let j = 0; j < m; j++) assert.equal(getBit(part.bits, j), getBit(got.bits, j));
      if (m & 31) assert.equal(part.bits[part.bits.length - 1]! >>> (m & 31), 0, 'nothing beyond the last click');
    }
    const kept = onesOf(matchBits(got.bases, rx.bases, rx.count), rx.count);
    assert.deepEqual(kept, matchingClicks(got.bases, rx.bases, rx.count));
    assert.ok(kept.length > rx.count * 0.4 && kept.length < rx.count * 0.6);
  });
});
