import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import {
  bitsToBytes,
  bytesToBits,
  gather,
  getBit,
  hammingDistance,
  newBits,
  rangeParity,
  setBit,
} from '../../src/qkd/bits.js';
import { decodeCrumbs, decodeIndices, encodeCrumbs, encodeIndices } from '../../src/sources/qkd/wire.js';

const fromString = (s: string) => {
  const b = newBits(s.length);
  [...s].forEach((c, i) => setBit(b, i, c === '1' ? 1 : 0));
  return b;
};

describe('bit strings', () => {
  it('range parities of a known string', () => {
    const b = fromString('1011000011110000101010101100110011111111000000001');
    assert.equal(rangeParity(b, 0, 4), 1); // 1011
    assert.equal(rangeParity(b, 4, 12), 0); // 00001111
    assert.equal(rangeParity(b, 30, 49), 1); // crosses a word: 11 11111111 00000000 1
    assert.equal(rangeParity(b, 5, 5), 0);
    assert.equal(hammingDistance(b, fromString('0011000011110000101010101100110011111111000000000'), 49), 2);
    assert.deepEqual(
      [...gather(b, [0, 2, 3, 48])].map((w) => w & 0xf),
      [0b1111],
    );
  });

  it('range parity equals the sum of the bits, anywhere', () => {
    fc.assert(
      fc.property(fc.array(fc.boolean(), { minLength: 1, maxLength: 200 }), fc.nat(), fc.nat(), (bools, x, y) => {
        const b = newBits(bools.length);
        bools.forEach((v, i) => setBit(b, i, v ? 1 : 0));
        const lo = x % bools.length;
        const hi = lo + (y % (bools.length - lo + 1));
        const expected = bools.slice(lo, hi).filter(Boolean).length & 1;
        return rangeParity(b, lo, hi) === expected;
      }),
    );
  });

  it('bytes round-trip, with the tail cleared', () => {
    const b = fromString('1111111111');
    const bytes = bitsToBytes(b, 10);
    assert.deepEqual([...bytes], [0xff, 0x03]);
    const back = bytesToBits(Buffer.from([0xff, 0xff]), 10);
    assert.equal(getBit(back, 9), 1);
    assert.equal(back[0], 0x3ff);
  });
});

describe('wire encodings', () => {
  it('pulse indices round-trip as gaps', () => {
    fc.assert(
      fc.property(fc.uniqueArray(fc.integer({ min: 0, max: 2 ** 31 }), { maxLength: 300 }), (xs) => {
        const sorted = Uint32Array.from(xs.sort((a, b) => a - b));
        assert.deepEqual(decodeIndices(encodeIndices(sorted), sorted.length, 2 ** 31 + 1, 'i'), sorted);
      }),
    );
  });

  it('refuses indices outside the frame, truncated or with trailing bytes', () => {
    const enc = encodeIndices(Uint32Array.from([3, 200, 70000]));
    assert.throws(() => decodeIndices(enc, 3, 70000, 'indices'), /outside the frame/);
    assert.throws(() => decodeIndices(enc, 4, 1e6, 'indices'), /truncated/);
    assert.throws(() => decodeIndices(enc, 2, 1e6, 'indices'), /trailing/);
    assert.throws(() => decodeIndices('not base64!', 1, 10, 'indices'), /base64/);
  });

  it('two-bit values round-trip and are range-checked', () => {
    const v = Uint8Array.from([0, 1, 2, 3, 2, 1]);
    assert.deepEqual(decodeCrumbs(encodeCrumbs(v), 6, 'v'), v);
    assert.throws(() => decodeCrumbs(encodeCrumbs(v), 6, 'classes', 2), /above 2/);
    assert.throws(() => decodeCrumbs(encodeCrumbs(v), 9, 'classes'), /must hold 9/);
  });
});
