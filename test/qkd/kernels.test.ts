import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { newBits } from '../../src/qkd/bits.js';
import { CascadeCorrector } from '../../src/qkd/cascade.js';
import { kernels } from '../../src/qkd/kernels.js';

/*
 * The C kernels' own checks: whatever a caller passes, a bad argument is an exception, never a
 * read or write outside the arrays given. (What the kernels compute is tested through their
 * callers, against the definitions: hashing, wire, physics and Cascade tests.)
 */
describe('C kernels', () => {
  const k = kernels();

  it('refuse arrays of the wrong type or too short for the lengths given', () => {
    assert.throws(() => k.amplify(new Uint32Array(1), 64, new Uint8Array(12), new Uint8Array(12), 32), /at least 2/);
    assert.throws(() => k.amplify(new Uint32Array(2), 64, new Uint8Array(11), new Uint8Array(12), 32), /seed a/);
    assert.throws(() => k.amplify(new Uint32Array(2), 64, new Uint8Array(12), new Uint8Array(12), 65), /outBits/);
    assert.throws(() => k.encodeGaps(new Uint8Array(4) as unknown as Uint32Array), /Uint32Array/);
    assert.throws(() => k.decodeGaps(new Uint8Array(4), 3, 100, new Uint32Array(2)), /at least 3/);
    const strings = () => [new Uint32Array(1), new Uint32Array(1), new Uint32Array(1), new Uint32Array(0)] as const;
    assert.throws(() => k.choices(1, 2, 3, new Uint32Array(5), ...strings()), /at least 1/);
    assert.throws(() => k.permutation(64, new Uint32Array(3)), /at least 4/);
    // A bound that is not a number is 0: every index lies outside it.
    assert.equal(k.decodeGaps(Buffer.from([0, 0]), 1, NaN, new Uint32Array(1)), 2);
  });

  it('refuse views and correctors whose tables are not permutations of whole tiles', () => {
    const key = newBits(64);
    const rows = k.permutation(32, Uint32Array.of(1, 2, 3, 4));
    const outside = rows.slice();
    outside[7] = 32;
    const twice = rows.slice();
    twice[7] = twice[8]!;
    assert.throws(() => k.view(key, 64, rows, outside, 1, 1), /not permutations/);
    assert.throws(() => k.view(key, 64, rows.subarray(1), rows.subarray(1), 1, 1), /whole tiles/);
    // A shuffled pass is the key padded to 1024 bits: 32 words.
    const shuffled = Uint32Array.of(1024, 64, 1, 1);
    assert.doesNotThrow(() => k.correctorFree(k.correctorNew(key, 64, shuffled, [rows, rows])));
    for (const bad of [outside, twice]) {
      assert.throws(() => k.correctorNew(key, 64, shuffled, [rows, bad]), /permutations of its words/);
    }
    const passes = /a pass is n bits/;
    const wide = k.permutation(64, Uint32Array.of(1, 2, 3, 4));
    assert.throws(() => k.correctorNew(key, 64, Uint32Array.of(2048, 64, 1, 1), [wide, wide]), passes);
    assert.throws(() => k.correctorNew(key, 64, Uint32Array.of(64, 0, 0, 0), []), passes);
    assert.throws(() => k.correctorNew(key, 64, Uint32Array.of(64, 65, 0, 0), []), passes);
    assert.throws(() => k.correctorNew(key, 64, Uint32Array.of(63, 8, 0, 0), []), passes);
    assert.throws(() => k.correctorNew(key, 2 ** 26, Uint32Array.of(2 ** 26, 8, 0, 0), []), /at least|2\^26/);
    const oneBit = Uint32Array.of(1024, 1, 1, 1, 1024, 1, 1, 1);
    assert.throws(() => k.correctorNew(key, 64, oneBit, [rows, rows, rows, rows]), /too many blocks/);
    assert.throws(() => k.permutation(2 ** 27, Uint32Array.of(1, 2, 3, 4)), /at most/);
  });

  it("read a corrector's tables before its key: a getter that detaches the key cannot leave it dangling", () => {
    const key = newBits(64);
    const rows = k.permutation(32, Uint32Array.of(1, 2, 3, 4));
    const tables = [rows];
    Object.defineProperty(tables, 1, {
      get: () => {
        structuredClone(key.buffer, { transfer: [key.buffer] });
        return rows;
      },
    });
    assert.throws(() => k.correctorNew(key, 64, Uint32Array.of(1024, 64, 1, 1), tables), /at least 2/);
  });

  it('a corrector refuses the wrong number of answers, and any use once wiped', () => {
    const c = new CascadeCorrector(newBits(100), 100, [{ blockSize: 10 }]);
    assert.throws(() => c.onAnswers(new Uint8Array(1)), /wrong number of parity answers/);
    assert.ok(c.onAnswers(new Uint8Array(2)) === null, 'a wrong count changes nothing: the right one is taken');
    c.wipe();
    assert.throws(() => c.onAnswers(new Uint8Array(2)), /already freed/);
    assert.throws(() => k.correctorAnswers({}, new Uint8Array(2), new Uint32Array(30)), /not a corrector/);
  });
});
