import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { bitsToBytes, bytesToBits, getBit, setBit, wordsFor } from '../../src/qkd/bits.js';
import * as decoy from '../../src/qkd/decoy.js';
import { estimate, secretLength } from '../../src/qkd/estimation.js';
import { amplificationSeedBytes, amplify, toeplitzHash, toeplitzSeedWords } from '../../src/qkd/hashing.js';
import { Prng } from '../../src/qkd/prng.js';

describe('hashing', () => {
  it('Toeplitz tags equal the matrix product, bit by bit', () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 300 }), fc.nat(), (n, seed) => {
        const rng = new Prng([seed, 1, 2, 3]);
        const x = bytesToBits(Buffer.from(rng.fill(new Uint32Array(Math.ceil(n / 32))).buffer), n);
        const t = rng.fill(new Uint32Array(toeplitzSeedWords(n, 64)));
        const tag = toeplitzHash(x, n, t);
        for (let i = 0; i < 64; i++) {
          let y = 0;
          for (let j = 0; j < n; j++) y ^= getBit(t, i + j) & getBit(x, j);
          assert.equal((tag[i >>> 3]! >>> (i & 7)) & 1, y, `output bit ${i}`);
        }
      }),
      { numRuns: 30 },
    );
  });

  it('Toeplitz tags: shorter tags are prefixes, an empty key hashes to 0, an all-one key to the XOR of all columns', () => {
    const rng = new Prng([4, 4, 4, 4]);
    for (const n of [0, 1, 31, 32, 33, 64, 1000]) {
      const t = rng.fill(new Uint32Array(toeplitzSeedWords(n, 64)));
      const ones = new Uint32Array(Math.ceil(n / 32)).fill(0xffffffff);
      const full = toeplitzHash(ones, n, t);
      for (let i = 0; i < 64; i++) {
        let y = 0;
        for (let j = 0; j < n; j++) y ^= getBit(t, i + j);
        assert.equal((full[i >>> 3]! >>> (i & 7)) & 1, y, `n ${n}, output bit ${i}`);
      }
      assert.deepEqual([...toeplitzHash(new Uint32Array(ones.length), n, t)], [0, 0, 0, 0, 0, 0, 0, 0]);
      for (const bits of [1, 7, 31, 32, 33, 63]) {
        const short = toeplitzHash(ones, n, t, bits);
        assert.equal(short.length, Math.ceil(bits / 8));
        for (let i = 0; i < 64; i++) {
          const want = i < bits ? (full[i >>> 3]! >>> (i & 7)) & 1 : 0;
          assert.equal(i < 8 * short.length ? (short[i >>> 3]! >>> (i & 7)) & 1 : 0, want, `${bits}-bit tag, bit ${i}`);
        }
      }
    }
    assert.throws(() => toeplitzHash(new Uint32Array(1), 32, new Uint32Array(3)), /too short/);
  });

  it('multiply-add-shift is strongly universal (exhaustive, 4-bit keys onto 2 bits)', () => {
    const [w, l] = [4, 2];
    const wbar = w + l - 1;
    const h = (a: number, b: number, x: number) => ((a * x + b) % 2 ** wbar) >> (wbar - l);
    for (let x = 0; x < 2 ** w; x++) {
      for (let y = x + 1; y < 2 ** w; y++) {
        const counts = new Map<string, number>();
        for (let a = 0; a < 2 ** wbar; a++)
          for (let b = 0; b < 2 ** wbar; b++) {
            const k = `${h(a, b, x)},${h(a, b, y)}`;
            counts.set(k, (counts.get(k) ?? 0) + 1);
          }
        // Every pair of outputs equally likely: (2^w̄)^2 / (2^l)^2 choices of (a, b) each.
        assert.equal(counts.size, 2 ** (2 * l));
        for (const c of counts.values()) assert.equal(c, 2 ** (2 * wbar - 2 * l));
      }
    }
  });

  it('amplify (GMP) computes that family, checked against BigInt, at edges of words and limbs', () => {
    const rng = new Prng([9, 9, 9, 9]);
    const big = (bytes: Uint8Array, bits: number) =>
      BigInt(
        '0x0' +
          Buffer.from(bitsToBytes(bytesToBits(bytes, bits), bits))
            .reverse()
            .toString('hex'),
      );
    const sizes: Array<[number, number]> = [
      [1, 1],
      [31, 1],
      [32, 32],
      [63, 2],
      [64, 64],
      [65, 33],
      [1000, 300],
      [100_003, 20_001],
    ];
    for (const [n, out] of sizes) {
      const wbar = n + out - 1;
      // Garbage beyond n and w̄ bits, and views that do not start a buffer: all must be ignored.
      const x = rng.fill(new Uint32Array(wordsFor(n) + 2)).subarray(1);
      const seeds = Buffer.from(rng.fill(new Uint32Array(2 * wordsFor(wbar) + 3)).buffer).subarray(1);
      const [a, b] = [seeds.subarray(0, amplificationSeedBytes(n, out) + 1), seeds.subarray(4 * wordsFor(wbar) + 2)];
      const expected =
        BigInt.asUintN(wbar, big(a, wbar) * big(bitsToBytes(x, n), n) + big(b, wbar)) >> BigInt(wbar - out);
      const got = amplify(x, n, a, b, out);
      assert.equal(got.length, wordsFor(out), `${n} → ${out}: length`);
      assert.equal(big(bitsToBytes(got, out), out), expected, `${n} → ${out}`);
      if (out & 31) assert.equal(got[got.length - 1]! >>> (out & 31), 0, `${n} → ${out}: tail zero`);
      const x2 = x.slice();
      setBit(x2, n - 1, getBit(x, n - 1) ^ 1);
      if (out > 8) assert.notDeepEqual(amplify(x2, n, a, b, out), got, 'another key, another output');
    }
  });

  it('amplify refuses lengths its buffers do not hold', () => {
    const a = new Uint8Array(amplificationSeedBytes(64, 32));
    assert.throws(() => amplify(new Uint32Array(1), 64, a, a, 32), /fewer than 64 bits/);
    assert.throws(() => amplify(new Uint32Array(2), 64, a.subarray(1), a, 32), /seeds too short/);
    assert.throws(() => amplify(new Uint32Array(2), 64, a, a, 65), /1\.\.n bits/);
    assert.throws(() => amplify(new Uint32Array(2), 64, a, a, 0), /1\.\.n bits/);
  });
});

describe('decoy-state BB84 against Ma, Qi, Zhao and Lo (2005) with the GYS parameters', () => {
  const at = (km: number) => ({ ...decoy.GYS, distanceKm: km });
  const best = (rate: (c: decoy.ChannelParams, mu: number) => number) => (km: number) =>
    decoy.optimiseMu((mu) => rate(at(km), mu)).rate;

  it('the optimal μ is about 0.48 and the perfect-decoy cut-off about 142 km', () => {
    assert.ok(Math.abs(decoy.optimiseMu((mu) => decoy.perfectDecoyRate(at(50), mu, 1.22)).mu - 0.48) < 0.02);
    const perfect = decoy.maxDistance(best((c, mu) => decoy.perfectDecoyRate(c, mu, 1.22)));
    assert.ok(perfect > 140 && perfect < 145, `perfect decoy reaches ${perfect} km`);
  });

  it('vacuum + weak decoy approaches it from below; without decoys the link is far shorter', () => {
    const perfect = decoy.maxDistance(best((c, mu) => decoy.perfectDecoyRate(c, mu, 1.22)));
    for (const nu of [0.01, 0.05, 0.1]) {
      const d = decoy.maxDistance(best((c, mu) => decoy.vacuumWeakRate(c, mu, nu, 1.22)));
      assert.ok(d <= perfect && d > perfect - 4, `ν = ${nu}: ${d} km`);
    }
    const none = decoy.maxDistance(best((c, mu) => decoy.noDecoyRate(c, mu, 1.22)));
    assert.ok(none > 25 && none < 50, `no decoy: ${none} km`);
  });

  it('the estimate from exact expected counts recovers the single-photon yield', () => {
    const c = at(50);
    const [mu, nu] = [0.48, 0.05];
    const N = 1e12;
    const s = decoy.expected(c, mu);
    const d = decoy.expected(c, nu);
    const e = estimate(
      {
        pulses: [N, N, N],
        clicks: [s.gain * N, d.gain * N, c.darkCountProbability * N],
        compared: [N, N, N],
        errors: [s.qber * N, d.qber * N, 0.5 * N],
      },
      { mu, nu, nSigma: 0 },
    );
    const { y1, e1 } = decoy.singlePhoton(c);
    assert.ok(e.y1Lower <= y1 && e.y1Lower > 0.98 * y1, `Y1 ${e.y1Lower} vs ${y1}`);
    assert.ok(e.e1Upper >= e1 && e.e1Upper < e1 * 1.15, `e1 ${e.e1Upper} vs ${e1}`);
    assert.ok(Math.abs(e.qber - s.qber) < 1e-12);
    // ℓ = n·Δ1·(1 − h(e1)) − disclosed − 2·log2(1/ε)
    const l = secretLength(e, 1e6, 1000, 2 ** -20);
    assert.equal(l, Math.floor(1e6 * e.singlePhotonFraction * (1 - decoy.h2(e.e1Upper)) - 1000 - 40));
    assert.equal(secretLength(e, 10, 1000, 1e-10), 0);
  });

  it('h2 at known points', () => {
    assert.equal(decoy.h2(0.5), 1);
    assert.equal(decoy.h2(0), 0);
    assert.ok(Math.abs(decoy.h2(0.11) - 0.4999) < 1e-3);
  });
});
