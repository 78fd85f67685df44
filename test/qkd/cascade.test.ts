import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { flipBit, getBit, hammingDistance, newBits, type Bits } from '../../src/qkd/bits.js';
import { CascadeCorrector, CascadeResponder, mulMod, responderViews } from '../../src/qkd/cascade.js';
import { blockSizes, planPasses, shuffled, type CascadeVariant } from '../../src/qkd/cascade-plan.js';
import { h2 } from '../../src/qkd/decoy.js';
import { Prng } from '../../src/qkd/prng.js';

function run(variant: CascadeVariant, n: number, qber: number, seed: number) {
  const rng = new Prng([seed, 7, 11, 13]);
  const bob = rng.bits(n);
  const alice = bob.slice();
  let errors = 0;
  for (let i = 0; i < n; i++) {
    if (rng.float() < qber) {
      flipBit(alice, i);
      errors++;
    }
  }
  const passes = planPasses(variant, qber, n, rng);
  const corrector = new CascadeCorrector(alice, n, passes);
  const responder = new CascadeResponder(bob, n);
  responder.addPasses(passes);
  let q: Uint32Array | null = corrector.firstQuestions();
  while (q) q = corrector.onAnswers(responder.answer(q));
  return { alice, bob, errors, corrector, responder, residual: hammingDistance(alice, bob, n) };
}

describe('Cascade', () => {
  it('block sizes follow the published rules', () => {
    assert.deepEqual(blockSizes('original', 0.01, 1e6), [73, 146, 292, 584]);
    assert.deepEqual(blockSizes('yanetal', 0.02, 1e4).slice(0, 3), [40, 200, 5000]);
    assert.deepEqual(blockSizes('pow2', 0.03, 1e4).slice(0, 3), [64, 256, 5000]);
  });

  it('views made in one piece (for another thread) and implied top-level answers equal the asked ones', () => {
    fc.assert(
      fc.property(fc.integer({ min: 2, max: 5000 }), fc.nat(), (n, seed) => {
        const rng = new Prng([n, seed, 3, 4]);
        const key = rng.bits(n);
        const passes = planPasses('yanetal', 0.05, n, rng);
        const asked = new CascadeResponder(key, n);
        asked.addPasses(passes);
        const implied = new CascadeResponder(key, n);
        implied.addPasses(passes);
        const size = ((n + 31) >>> 5) + 2;
        const all = responderViews(key, n, passes);
        implied.useViews(passes.map((_, i) => all.subarray(i * size, (i + 1) * size)));
        const first = new CascadeCorrector(key.slice(), n, passes).firstQuestions();
        assert.deepEqual(implied.answerTopLevel(), asked.answer(first));
        assert.equal(implied.disclosed, asked.disclosed, 'the implied batch counts as disclosed');
        const lo = rng.below(n);
        const q = Uint32Array.of(passes.length - 1, lo, lo + 1 + rng.below(n - lo));
        assert.deepEqual(implied.answer(q), asked.answer(q));
      }),
      { numRuns: 60 },
    );
  });

  it('a shuffle is a permutation', () => {
    const rng = new Prng([1, 2, 3, 4]);
    const n = 1000;
    const [, pass] = planPasses('original', 0.05, n, rng);
    const key = newBits(n);
    flipBit(key, 123);
    const view = shuffled(key, n, pass!);
    assert.equal(hammingDistance(view, newBits(n), n), 1);
  });

  it('a shuffled view is the key read in the affine order, for any n (odd, not a multiple of 32)', () => {
    fc.assert(
      fc.property(fc.integer({ min: 2, max: 3000 }), fc.nat(), (n, seed) => {
        const rng = new Prng([n, seed, 1, 2]);
        const key = rng.bits(n);
        const [, pass] = planPasses('yanetal', 0.03, n, rng);
        const view = shuffled(key, n, pass!);
        for (let q = 0; q < n; q++) {
          assert.equal(getBit(view, q), getBit(key, (pass!.a * q + pass!.b) % n), `bit ${q} of ${n}`);
        }
        if (n & 31) assert.equal(view[view.length - 1]! >>> (n & 31), 0, 'bits past n stay clear');
      }),
      { numRuns: 80 },
    );
  });

  it('x·y mod n without a division agrees with exact arithmetic up to 2^26', () => {
    fc.assert(
      fc.property(fc.integer({ min: 2, max: 2 ** 26 - 1 }), fc.nat(), fc.nat(), (n, x, y) => {
        const [a, b] = [x % n, y % n];
        assert.equal(mulMod(a, b, n, 1 / n), Number((BigInt(a) * BigInt(b)) % BigInt(n)));
        assert.equal(mulMod(n - 1, n - 1, n, 1 / n), 1);
      }),
      { numRuns: 2000 },
    );
  });

  it('the responder refuses a question outside the key and counts nothing for the batch', () => {
    const n = 100;
    const r = new CascadeResponder(newBits(n), n);
    r.addPasses([{ blockSize: 10, a: 1, b: 0 }]);
    for (const bad of [
      [1, 0, 10],
      [0, 0, 101],
      [0, 5, 5],
      [0, 0, 10, 0],
    ]) {
      assert.throws(() => r.answer(Uint32Array.from([0, 0, 10, ...bad])), RangeError);
    }
    assert.equal(r.disclosed, 0);
    assert.equal(r.answer(Uint32Array.from([0, 0, 10, 0, 90, 100])).length, 1);
    assert.equal(r.disclosed, 2);
  });

  it('the corrector refuses a plan with far more blocks than any variant makes', () => {
    const n = 1000;
    const tiny = Array.from({ length: 3 }, () => ({ blockSize: 1, a: 1, b: 0 }));
    assert.throws(() => new CascadeCorrector(newBits(n), n, tiny), /too many blocks/);
    for (const variant of ['original', 'yanetal', 'pow2'] as const) {
      const passes = planPasses(variant, 0.5, n, new Prng([1, 2, 3, 4]));
      assert.doesNotThrow(() => new CascadeCorrector(newBits(n), n, passes));
    }
  });

  it('corrects a single error in a small key with log2(block) questions', () => {
    const n = 16;
    const bob: Bits = Uint32Array.from([0b1011_0110_0101_1100]);
    const alice = bob.slice();
    flipBit(alice, 9);
    const passes = [{ blockSize: 16, a: 1, b: 0 }];
    const c = new CascadeCorrector(alice, n, passes);
    const r = new CascadeResponder(bob, n);
    r.addPasses(passes);
    let q: Uint32Array | null = c.firstQuestions();
    assert.deepEqual([...q], [0, 0, 16]);
    while (q) q = c.onAnswers(r.answer(q));
    assert.deepEqual(alice, bob);
    assert.equal(c.corrected, 1);
    assert.equal(c.disclosed, 1 + 4, 'the block parity, then four halvings');
    assert.equal(r.disclosed, c.disclosed, 'both ends count the same disclosed bits');
  });

  it('only ever flips wrong bits, and both ends count the same disclosures', () => {
    fc.assert(
      fc.property(
        fc.constantFrom<CascadeVariant>('original', 'yanetal', 'pow2'),
        fc.integer({ min: 64, max: 3000 }),
        fc.double({ min: 0.001, max: 0.12, noNaN: true }),
        fc.nat(),
        (variant, n, qber, seed) => {
          const r = run(variant, n, qber, seed);
          assert.equal(r.corrector.disclosed, r.responder.disclosed);
          assert.ok(r.corrector.done);
          // A binary search ends on a bit that really differs: every flip fixes an error, and
          // the residual is exactly what Cascade missed.
          assert.equal(r.corrector.corrected + r.residual, r.errors);
        },
      ),
      { numRuns: 60 },
    );
  });

  it('efficiency at 10^4 bits is in the published range, the improved variants below the original', () => {
    const f = (variant: CascadeVariant, qber: number) => {
      const runs = Array.from({ length: 15 }, (_, i) => run(variant, 10_000, qber, 1000 + i));
      const fs = runs.map((r) => r.corrector.disclosed / (10_000 * h2(r.errors / 10_000))).sort((a, b) => a - b);
      assert.ok(runs.filter((r) => r.residual > 0).length <= 1, `${variant} at ${qber}: residual errors rare`);
      return fs[7]!;
    };
    for (const qber of [0.02, 0.05]) {
      const original = f('original', qber);
      const yan = f('yanetal', qber);
      // Martinez-Mateo et al. (2015), Fig. 9 at n = 10^4: original about 1.15–1.25, opt. (2) about 1.1.
      assert.ok(original > 1.1 && original < 1.35, `original f = ${original}`);
      assert.ok(yan > 1.0 && yan < original, `Yan et al. f = ${yan} below original ${original}`);
    }
  });
});
