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
import { FixedParities } from '../../src/qkd/parity-index.js';
import { Prng } from '../../src/qkd/prng.js';
import { decodeCrumbs, decodeIndices, encodeCrumbs, encodeIndices } from '../../src/sources/qkd/wire.js';
import { decodeEnvelope, encodeEnvelope } from '../../src/sources/qkd/envelope.js';

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

  it('fixed parity views give every range the scan gives, and wipe the bits they took', () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 700 }), fc.nat(), (n, seed) => {
        const bits = new Prng([n, seed, 6, 7]).bits(n);
        const reference = bits.slice();
        const view = new FixedParities(bits);
        assert.ok(
          bits.every((w) => w === 0),
          'the bits handed over are wiped',
        );
        for (let lo = 0; lo <= n; lo += 1 + (seed % 5)) {
          for (let hi = lo; hi <= n; hi += 1 + (seed % 7)) {
            assert.equal(view.range(lo, hi), rangeParity(reference, lo, hi), `[${lo}, ${hi}) of ${n}`);
          }
          assert.equal(view.range(lo, n), rangeParity(reference, lo, n));
        }
      }),
      { numRuns: 60 },
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

  it('any bytes decode to increasing indices inside the frame or are refused, never read past', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 64 }), fc.nat(40), fc.nat(2 ** 20), (bytes, count, below) => {
        // A copy whose end is the end of its memory: a read past it would be caught by the bounds.
        const field = Buffer.from(bytes);
        try {
          const got = decodeIndices(field, count, below, 'i');
          assert.equal(got.length, count);
          for (let i = 0; i < count; i++) assert.ok(got[i]! < below && (i === 0 || got[i]! > got[i - 1]!));
          assert.deepEqual(encodeIndices(got), field, 'the only code of these indices');
        } catch (err) {
          assert.match((err as Error).message, /^i (is truncated or malformed|names a pulse outside|has trailing)/);
        }
      }),
    );
  });

  it('refuses indices outside the frame, truncated or with trailing bytes', () => {
    // 70000 - 201 - 1 is a gap too wide for 16 bits: escaped, then 32 bits.
    const enc = encodeIndices(Uint32Array.from([3, 200, 70000]));
    assert.equal(enc.length, 2 + 2 + 6);
    assert.throws(() => decodeIndices(enc, 3, 70000, 'indices'), /outside the frame/);
    assert.throws(() => decodeIndices(enc, 4, 1e6, 'indices'), /truncated/);
    assert.throws(() => decodeIndices(enc, 2, 1e6, 'indices'), /trailing/);
    assert.throws(() => decodeIndices('not bytes', 1, 10, 'indices'), /must be a byte field/);
  });

  it('pulse indices with many wide gaps, gaps at the escape boundary, and at an odd offset', () => {
    // Every gap escaped (more than the encoder's first guess of room), then gaps around 0xffff.
    const wide = Uint32Array.from({ length: 300 }, (_, i) => i * 70_000);
    const enc = encodeIndices(wide);
    assert.equal(enc.length, 2 + 299 * 6);
    assert.deepEqual(decodeIndices(enc, 300, 2 ** 32, 'i'), wide);
    const edge = Uint32Array.from([0xfffe, 0xfffe + 0xfffe + 1, 0xfffe + 0xfffe + 1 + 0xffff + 1, 2 ** 32 - 1]);
    const e2 = encodeIndices(edge);
    assert.equal(e2.length, 2 + 2 + 6 + 6);
    assert.deepEqual(decodeIndices(e2, 4, 2 ** 32, 'i'), edge);
    // A byte field at an odd offset of its message body decodes the same.
    const body = Buffer.concat([Buffer.from([7]), e2]);
    assert.equal(body.subarray(1).byteOffset & 1, body.byteOffset & 1 ? 0 : 1);
    assert.deepEqual(decodeIndices(body.subarray(1), 4, 2 ** 32, 'i'), edge);
    assert.throws(() => decodeIndices(e2.subarray(0, e2.length - 1), 4, 2 ** 32, 'i'), /truncated or malformed/);
    assert.throws(() => decodeIndices(e2.subarray(0, e2.length - 2), 4, 2 ** 32, 'i'), /truncated/);
    assert.deepEqual(decodeIndices(Buffer.alloc(0), 0, 10, 'i'), new Uint32Array(0));
    assert.equal(encodeIndices(new Uint32Array(0)).length, 0);
  });

  it('two-bit values round-trip and are range-checked', () => {
    const v = Uint8Array.from([0, 1, 2, 3, 2, 1]);
    assert.deepEqual(decodeCrumbs(encodeCrumbs(v), 6, 'v'), v);
    assert.throws(() => decodeCrumbs(encodeCrumbs(v), 6, 'classes', 2), /above 2/);
    assert.throws(() => decodeCrumbs(encodeCrumbs(v), 9, 'classes'), /must hold 9/);
  });
});

describe('message envelopes', () => {
  it('carry JSON fields and byte fields unchanged', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 300 }), fc.uint8Array({ maxLength: 30 }), fc.integer(), (a, b, frame) => {
        const back = decodeEnvelope(encodeEnvelope({ frame, a, nested: { x: [1, 'y'] }, b }));
        assert.equal(back['frame'], frame);
        assert.deepEqual(back['nested'], { x: [1, 'y'] });
        assert.deepEqual(new Uint8Array(back['a'] as Buffer), a);
        assert.deepEqual(new Uint8Array(back['b'] as Buffer), b);
      }),
    );
  });

  it('refuses truncated bodies, trailing bytes, bad headers and clashing field names', () => {
    const body = encodeEnvelope({ frame: 1, bits: Buffer.from([1, 2, 3]) });
    assert.throws(() => decodeEnvelope(body.subarray(0, body.length - 1)), /truncated/);
    assert.throws(() => decodeEnvelope(Buffer.concat([body, Buffer.from([0])])), /trailing bytes/);
    assert.throws(() => decodeEnvelope(Buffer.from([1, 0, 0])), /truncated/);
    const header = (text: string) => {
      const json = Buffer.from(text);
      const length = Buffer.alloc(4);
      length.writeUInt32LE(json.length);
      return Buffer.concat([length, json]);
    };
    assert.throws(() => decodeEnvelope(header('{nope')), /not JSON/);
    assert.throws(() => decodeEnvelope(header('[1]')), /must be an object/);
    assert.throws(() => decodeEnvelope(header('{"$binary":"bits"}')), /byte fields/);
    const clash = Buffer.concat([header('{"bits":1,"$binary":["bits"]}'), Buffer.from([0, 0, 0, 0])]);
    assert.throws(() => decodeEnvelope(clash), /byte fields/);
    const proto = Buffer.concat([header('{"$binary":["__proto__"]}'), Buffer.from([0, 0, 0, 0])]);
    assert.throws(() => decodeEnvelope(proto), /byte fields/);
  });
});
