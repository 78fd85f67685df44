import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { gather, getBit, newBits, setBit, type Bits } from '../../src/qkd/bits.js';
import { compress, countOnes, selectBit } from '../../src/qkd/compress.js';
import { Prng } from '../../src/qkd/prng.js';
import { keepMatching, onesOf, signalMask, splitMasks, type ClickChoices } from '../../src/qkd/sifting.js';
import { decodeSignalMask, encodeClasses } from '../../src/sources/qkd/wire.js';

/** The split as first written, a branch per kept click: the reference the masks must equal. */
function referencePartition(classes: ArrayLike<number>, seed: number, fraction: number) {
  const rng = new Prng([seed, 0x73616d70, classes.length, 2]);
  const skip = 1 / Math.log1p(-fraction);
  const disclosed: number[] = [];
  const key: number[] = [];
  let ordinal = 0;
  let next = rng.geometricOf(skip);
  for (let i = 0; i < classes.length; i++) {
    if (classes[i] !== 0) disclosed.push(i);
    else if (ordinal++ === next) {
      disclosed.push(i);
      next = ordinal + rng.geometricOf(skip);
    } else key.push(i);
  }
  return { disclosed, key };
}

const bitsOf = (n: number, at: (i: number) => number): Bits => {
  const b = newBits(n);
  for (let i = 0; i < n; i++) setBit(b, i, at(i));
  return b;
};
const positions = (b: Bits, n: number) => [...onesOf(b, n)];

/** Random bit strings: of any density, sometimes all ones or all zeros, with noise beyond n in the last word. */
const randomBits = (rng: Prng, n: number, kind: number): Bits => {
  const b = rng.fill(newBits(n));
  if (kind === 1) b.fill(0xffffffff);
  if (kind === 2) b.fill(0);
  if (kind === 3) for (let w = 0; w < b.length; w++) b[w]! &= rng.u32() & rng.u32(); // sparse
  return b;
};

describe('sifting kernels against per-bit references', () => {
  it('compress gathers the bits at the mask, of any length and density', () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 2000 }), fc.nat(), fc.nat(3), fc.nat(3), (n, seed, mk, sk) => {
        const rng = new Prng([seed, n, mk, sk]);
        const mask = randomBits(rng, n, mk);
        const src = randomBits(rng, n, sk);
        const got = compress(src, mask, n);
        const at = onesOf(mask, n);
        assert.equal(got.count, at.length);
        assert.equal(countOnes(mask, n), at.length);
        assert.equal(got.bits.length, Math.ceil(at.length / 32));
        assert.deepEqual(got.bits, gather(src, at));
      }),
      { numRuns: 300 },
    );
  });

  it('selectBit finds the r-th set bit of a word', () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 2 ** 32 - 1 }), fc.nat(31), (x, r0) => {
        const ones = [...Array(32).keys()].filter((b) => (x >>> b) & 1);
        const r = r0 % ones.length;
        assert.equal(selectBit(x, r), ones[r]);
      }),
      { numRuns: 500 },
    );
    assert.equal(selectBit(0xffffffff, 31), 31);
    assert.equal(selectBit(0x80000000, 0), 31);
  });

  it('the split masks equal the reference split, with the same random draws', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 0, max: 3000 }),
        fc.integer({ min: 0, max: 2 ** 32 - 1 }),
        fc.constantFrom(0, 0.001, 0.05, 0.3, 0.9, 1),
        fc.nat(3),
        (n, seed, fraction, kind) => {
          const rng = new Prng([seed, 7, 7, 7]);
          // Kinds: mixed classes, all signal, no signal, signal with a few others.
          const classes = Uint8Array.from({ length: n }, () =>
            kind === 1 ? 0 : kind === 2 ? 1 + rng.below(2) : kind === 3 ? (rng.chance(0.02) ? 2 : 0) : rng.below(3),
          );
          const decoys = bitsOf(n, (i) => +(classes[i] === 1));
          const vacuums = bitsOf(n, (i) => +(classes[i] === 2));
          const signal = signalMask(decoys, vacuums, n);
          assert.deepEqual(
            positions(signal, n),
            [...classes.keys()].filter((i) => classes[i] === 0),
          );
          const split = splitMasks(signal, n, seed, fraction);
          const ref = referencePartition(classes, seed, fraction);
          assert.deepEqual(positions(split.key, n), ref.key);
          assert.deepEqual(positions(split.disclosed, n), ref.disclosed);
          assert.equal(split.sampled, ref.disclosed.filter((i) => classes[i] === 0).length);
          if (n & 31) assert.equal(split.disclosed[split.disclosed.length - 1]! >>> (n & 31), 0, 'clear beyond n');
          // Both ends' classes: Alice's masks across the wire give Bob the same signal pulses.
          assert.deepEqual(decodeSignalMask(encodeClasses(decoys, vacuums, n), n, 'classes'), signal);
        },
      ),
      { numRuns: 200 },
    );
  });

  it("Alice's kept clicks are those whose bases match, with their bits and classes", () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 2000 }), fc.nat(), (m, seed) => {
        const rng = new Prng([seed, 1, 2, 3]);
        const classes = Uint8Array.from({ length: m }, () => rng.below(3));
        const alice: ClickChoices = {
          bases: rng.fill(newBits(m)),
          bits: rng.fill(newBits(m)),
          decoys: bitsOf(m, (i) => +(classes[i] === 1)),
          vacuums: bitsOf(m, (i) => +(classes[i] === 2)),
          counts: [0, 0, 0],
        };
        const bob = rng.fill(newBits(m));
        const kept = keepMatching(alice, bob, m);
        const same = [...Array(m).keys()].filter((j) => getBit(alice.bases, j) === getBit(bob, j));
        assert.deepEqual(positions(kept.match, m), same);
        if (m & 31) assert.equal(kept.match[kept.match.length - 1]! >>> (m & 31), 0);
        assert.equal(kept.count, same.length);
        assert.deepEqual(kept.bits, gather(alice.bits, same));
        assert.deepEqual(
          positions(kept.decoys, kept.count),
          same.flatMap((j, k) => (classes[j] === 1 ? [k] : [])),
        );
        assert.deepEqual(
          positions(kept.vacuums, kept.count),
          same.flatMap((j, k) => (classes[j] === 2 ? [k] : [])),
        );
      }),
      { numRuns: 200 },
    );
  });

  it('class fields from the wire: a value above 2, non-zero padding or a wrong length is refused', () => {
    const decoys = bitsOf(5, (i) => +(i === 1));
    const vacuums = bitsOf(5, (i) => +(i === 3));
    const enc = encodeClasses(decoys, vacuums, 5);
    assert.deepEqual([...enc], [0b10_00_01_00, 0]); // classes 0, 1, 0, 2 | 0
    assert.deepEqual(positions(decodeSignalMask(enc, 5, 'classes'), 5), [0, 2, 4]);
    assert.throws(() => decodeSignalMask(Buffer.from([0b11, 0]), 5, 'classes'), /above 2/);
    assert.throws(() => decodeSignalMask(Buffer.from([0, 0b0100]), 5, 'classes'), /padding/);
    assert.throws(() => decodeSignalMask(Buffer.from([0, 0, 0]), 5, 'classes'), /must hold 5/);
    assert.throws(() => decodeSignalMask('x', 5, 'classes'), /byte field/);
    assert.deepEqual(decodeSignalMask(Buffer.alloc(0), 0, 'classes'), new Uint32Array(0));
  });
});
