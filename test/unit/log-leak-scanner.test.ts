import assert from 'node:assert/strict';
import { randomBytes, randomUUID } from 'node:crypto';
import { describe, it } from 'node:test';
import { emptyFingerprints, findLeaks, fingerprint } from '../helpers/log-leaks.js';

describe('the scanner for key material in logs', () => {
  const key = randomBytes(32);
  const fp = emptyFingerprints();
  fingerprint(key, fp);
  const found = (line: string) => findLeaks(`{"level":30,"msg":"x"}\n${line}\n`, fp).length > 0;

  it('finds a key in every encoding a log line could carry it', () => {
    assert.ok(found(JSON.stringify({ msg: 'keys', key: key.toString('base64') })), 'base64');
    assert.ok(found(JSON.stringify({ key: key.toString('base64url') })), 'base64url');
    assert.ok(found(`key=${key.toString('hex')}`), 'hex');
    assert.ok(found(`KEY ${key.toString('hex').toUpperCase()}`), 'upper-case hex');
    assert.ok(found(JSON.stringify({ key })), "a Buffer's JSON form");
    assert.ok(found(`raw ${key.toString('latin1')}`), 'raw bytes');
  });

  it('finds part of a key, and a key inside a longer buffer at any offset', () => {
    assert.ok(found(key.subarray(0, 8).toString('base64')), 'the first 8 bytes');
    assert.ok(found(key.subarray(16, 24).toString('hex')), '8 bytes from the middle');
    for (const offset of [1, 2, 3, 5]) {
      const wrapped = Buffer.concat([randomBytes(offset), key, randomBytes(7)]);
      assert.ok(found(JSON.stringify({ body: wrapped.toString('base64') })), `offset ${offset}, base64`);
      assert.ok(found(`x${wrapped.toString('hex')}`), `offset ${offset}, hex`);
    }
    // Glued to other base64 characters, so that the run starts before the key's own encoding.
    assert.ok(found(`abc${key.toString('base64')}`), 'glued to other characters');
  });

  it('does not mistake key IDs, other keys or ordinary log text for key material', () => {
    const other = randomBytes(32);
    const lines = [
      JSON.stringify({ key_IDs: [randomUUID(), randomUUID()], reqId: randomBytes(6).toString('base64url') }),
      JSON.stringify({ key: other.toString('base64'), hex: other.toString('hex') }),
      JSON.stringify({ msg: 'refused: not authenticated', reason: 'no valid SAE client certificate' }),
    ];
    assert.deepEqual(findLeaks(lines.join('\n'), fp), []);
  });

  it('reports where, without repeating the material', () => {
    const [leak] = findLeaks(`ok\nok\nkey ${key.toString('base64')}\n`, fp);
    assert.equal(leak!.line, 3);
    assert.ok(!leak!.excerpt.includes(key.toString('base64').slice(0, 12)));
  });
});
