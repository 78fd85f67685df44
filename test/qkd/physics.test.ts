import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { getBit } from '../../src/qkd/bits.js';
import { deadTimePulses, detectorResponse, expectedSecretPerPulse, observed } from '../../src/physics/detector.js';
import { DECOY, SIGNAL, VACUUM, type LinkPhysics } from '../../src/physics/link-model.js';
import { Receiver } from '../../src/physics/receiver.js';
import { Transmitter } from '../../src/physics/transmitter.js';
import { matchBits, matchingClicks, onesOf } from '../../src/qkd/sifting.js';
import { expected, vacuumWeakRate } from '../../src/qkd/decoy.js';
import { checkSettings, DEFAULT_QKD, qkdSettingsOf } from '../../src/sources/qkd/settings.js';

/** One simulated frame of N pulses: clicks, sifted bits and errors by intensity class. */
function simulate(physics: LinkPhysics, N: number) {
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
  return { clicks, by, pulses };
}

/** Gains and error rates by class against the model (detector.ts), within 5σ and `slack` of the gain. */
function assertMatchesModel(physics: LinkPhysics, N: number, slack: number) {
  const { by, pulses } = simulate(physics, N);
  [physics.mu, physics.nu, 0].forEach((mu, k) => {
    const model = observed(physics, mu);
    const gain = by[k]!.clicks / pulses[k]!;
    const sigma = Math.sqrt(by[k]!.clicks) / pulses[k]!;
    assert.ok(
      Math.abs(gain - model.gain) < 5 * sigma + slack * model.gain,
      `class ${k}: gain ${gain} vs ${model.gain}`,
    );
    const qber = by[k]!.errors / by[k]!.sifted;
    const qSigma = Math.sqrt((model.qber * (1 - model.qber)) / by[k]!.sifted);
    assert.ok(
      Math.abs(qber - model.qber) < 5 * qSigma + slack * model.qber,
      `class ${k}: QBER ${qber} vs ${model.qber}`,
    );
  });
  assert.ok(Math.abs(by[SIGNAL]!.sifted / by[SIGNAL]!.clicks - 0.5) < 0.01, 'bases match half the time');
  return by;
}

describe('physics model', () => {
  it('gains and error rates by intensity match the channel model of Ma et al. (eqs. 6–7) with ideal detectors', () => {
    const physics = {
      ...DEFAULT_QKD.physics,
      distanceKm: 40,
      darkCountProbability: 1e-5,
      deadTimeUs: 0,
      afterpulseProbability: 0,
    };
    assertMatchesModel(physics, 40_000_000, 0.002);
    // Without detector effects the model is Ma et al.'s exactly.
    for (const mu of [physics.mu, physics.nu, 0]) {
      const r = detectorResponse(physics);
      assert.deepEqual([r.live, r.afterpulseYield], [1, 0]);
      assert.ok(Math.abs(observed(physics, mu).gain / expectedGain(physics, mu) - 1) < 1e-12);
    }
  });

  it('the detectors (dead time, afterpulsing) match the model by class, from the defaults to saturation', () => {
    assertMatchesModel({ ...DEFAULT_QKD.physics, distanceKm: 25 }, 20_000_000, 0.02);
    const saturated = { ...DEFAULT_QKD.physics, distanceKm: 5, repetitionRateHz: 1e9, afterpulseProbability: 0.05 };
    assert.ok(detectorResponse(saturated).live < 0.2);
    assertMatchesModel(saturated, 40_000_000, 0.03);
  });

  it('dead time saturates the click rate at high count rates, as 1/(1 + Rτ) predicts', () => {
    // 5 km at 1 GHz: about 6 million would-be clicks per second per detector; 1 µs keeps about 14%.
    const physics = { ...DEFAULT_QKD.physics, distanceKm: 5, repetitionRateHz: 1e9, afterpulseProbability: 0 };
    const ideal = { ...physics, deadTimeUs: 0 };
    const N = 20_000_000;
    const blind = simulate(physics, N).clicks;
    const all = simulate(ideal, N).clicks;
    const r = detectorResponse(physics);
    assert.ok(r.live < 0.2, `live fraction ${r.live}`);
    const perPulse = blind.count / N;
    assert.ok(Math.abs(perPulse / r.clicksPerPulse - 1) < 0.03, `${perPulse} clicks per pulse vs ${r.clicksPerPulse}`);
    assert.ok(blind.count < all.count * 0.2, `${blind.count} clicks with dead time, ${all.count} without`);
    // No detector clicks again within its dead time.
    const dead = deadTimePulses(physics);
    assert.equal(dead, 1000);
    const last = [-Infinity, -Infinity];
    for (let j = 0; j < blind.count; j++) {
      const d = getBit(blind.bits, j);
      assert.ok(blind.indices[j]! - last[d]! > dead, `detector ${d} clicked within its dead time`);
      last[d] = blind.indices[j]!;
    }
    // The key rate falls with it (every class's gain scales alike; the decoy estimate sees it all).
    assert.ok(expectedSecretPerPulse(physics) < 0.2 * expectedSecretPerPulse(ideal));
  });

  it('afterpulses raise the QBER (random bits in the gates after a click), as the model predicts', () => {
    const base = { ...DEFAULT_QKD.physics, distanceKm: 25, deadTimeUs: 1, afterpulseProbability: 0 };
    const noisy = { ...base, afterpulseProbability: 0.05 };
    const N = 20_000_000;
    const clean = assertMatchesModel(base, N, 0.02)[SIGNAL]!;
    const after = assertMatchesModel(noisy, N, 0.02)[SIGNAL]!;
    const [q0, q1] = [clean.errors / clean.sifted, after.errors / after.sifted];
    assert.ok(q1 > q0 + 0.01, `signal QBER ${q0} without afterpulses, ${q1} with`);
    assert.ok(observed(noisy, noisy.mu).qber > observed(base, base.mu).qber + 0.01);
    assert.ok(expectedSecretPerPulse(noisy) < expectedSecretPerPulse(base));
  });

  it('the expected rate is the vacuum + weak decoy bound per pulse sent, and only that without detector effects', () => {
    const ideal = { ...DEFAULT_QKD.physics, deadTimeUs: 0, afterpulseProbability: 0 };
    const asymptotic = vacuumWeakRate(ideal, ideal.mu, ideal.nu, 1.22) * ideal.pSignal;
    assert.ok(Math.abs(expectedSecretPerPulse(ideal) / asymptotic - 1) < 1e-9);
    assert.ok(expectedSecretPerPulse(DEFAULT_QKD.physics) < asymptotic);
  });

  it('takes the detectors from the configuration, with defaults, and refuses values out of range', () => {
    const base = { type: 'qkd' as const, seed_file: 'x' };
    assert.deepEqual(
      [qkdSettingsOf(base).physics.deadTimeUs, qkdSettingsOf(base).physics.afterpulseProbability],
      [1, 0.005],
    );
    const set = qkdSettingsOf({ ...base, dead_time_us: 10, afterpulse_probability: 0.03 }).physics;
    assert.deepEqual([set.deadTimeUs, set.afterpulseProbability], [10, 0.03]);
    assert.deepEqual(checkSettings(qkdSettingsOf({ ...base, dead_time_us: -1, afterpulse_probability: 0.9 })), [
      'dead_time_us must be within 0..1000',
      'afterpulse_probability must be within 0..0.5',
    ]);
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

const expectedGain = (physics: LinkPhysics, mu: number) => expected(physics, mu).gain;
