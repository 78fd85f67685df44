import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { QksError } from '../../src/domain/errors.js';
import { parseKeyIdQuery, parseKeyIds } from '../../src/domain/key-ids.js';
import { parseKeyRequest, parseKeyRequestQuery } from '../../src/domain/key-request.js';
import { DEFAULT_LIMITS, checkLimits } from '../../src/domain/limits.js';

const L = DEFAULT_LIMITS;
const refuses = (fn: () => unknown, message: string | RegExp) =>
  assert.throws(fn, (err: QksError) => {
    assert.ok(err instanceof QksError);
    assert.equal(err.status, 400);
    if (typeof message === 'string') assert.equal(err.message, message);
    else assert.match(err.message, message);
    return true;
  });

describe('key request rules', () => {
  it('fills the standard’s defaults', () => {
    for (const body of [undefined, {}]) {
      assert.deepEqual(parseKeyRequest(body, L), {
        number: 1,
        size: L.keySize,
        additionalSlaveSaeIds: [],
        extensionMandatory: {},
        extensionOptional: {},
      });
    }
    assert.deepEqual(parseKeyRequestQuery({}, L).number, 1);
  });

  it('takes number, size, slaves and merged extensions', () => {
    const r = parseKeyRequest(
      { number: 3, size: 72, additional_slave_SAE_IDs: ['b', 'c'], extension_mandatory: [{ x_a: 1 }, { x_b: [2] }] },
      L,
    );
    assert.deepEqual([r.number, r.size, r.additionalSlaveSaeIds], [3, 72, ['b', 'c']]);
    assert.deepEqual(r.extensionMandatory, { x_a: 1, x_b: [2] });
  });

  it('refuses sizes with the standard’s message when not a multiple of 8, and outside the limits', () => {
    refuses(() => parseKeyRequest({ size: 100 }, L), 'size shall be a multiple of 8');
    refuses(() => parseKeyRequest({ size: 56 }, L), /min_key_size/);
    refuses(() => parseKeyRequest({ size: L.maxKeySize + 8 }, L), /max_key_size/);
    refuses(() => parseKeyRequest({ size: 256.5 }, L), 'size must be an integer');
  });

  it('refuses numbers out of range or of the wrong type', () => {
    for (const number of [0, -1, L.maxKeyPerRequest + 1, 1.5, '1', null, Infinity, 2 ** 60]) {
      refuses(() => parseKeyRequest({ number }, L), /number/);
    }
  });

  it('refuses unknown fields, bad slave lists and bad extensions', () => {
    refuses(() => parseKeyRequest({ nmber: 1 }, L), /unknown field in key request: nmber/);
    refuses(() => parseKeyRequest([], L), /JSON object/);
    refuses(() => parseKeyRequest({ additional_slave_SAE_IDs: 'b' }, L), /array/);
    refuses(() => parseKeyRequest({ additional_slave_SAE_IDs: ['b', 'b'] }, L), /duplicates/);
    refuses(() => parseKeyRequest({ additional_slave_SAE_IDs: ['../x'] }, L), /letters, digits/);
    const many = Array.from({ length: L.maxSaeIdCount + 1 }, (_, i) => `s${i}`);
    refuses(() => parseKeyRequest({ additional_slave_SAE_IDs: many }, L), /max_SAE_ID_count/);
    refuses(() => parseKeyRequest({ additional_slave_SAE_IDs: ['b'] }, { ...L, maxSaeIdCount: 0 }), /not supported/);
    refuses(() => parseKeyRequest({ extension_mandatory: { a: 1 } }, L), /array of objects/);
    refuses(() => parseKeyRequest({ extension_optional: [{ a: 1 }, { a: 2 }] }, L), /more than once/);
    // The path's slave named again is a duplicate too.
    refuses(
      () => parseKeyRequest({ additional_slave_SAE_IDs: ['c', 'b'] }, L, 'b'),
      'additional_slave_SAE_IDs has duplicates',
    );
  });

  it('takes extension names every JavaScript object has as names like any other', () => {
    const names = ['constructor', 'toString', '__proto__', 'hasOwnProperty', 'valueOf'];
    const body = JSON.parse(`{"extension_optional": [${names.map((n) => `{"${n}": 1}`).join(',')}]}`) as unknown;
    const ext = parseKeyRequest(body, L).extensionOptional;
    assert.deepEqual(Object.keys(ext), names);
    assert.equal(Object.getPrototypeOf(ext), Object.prototype, 'no name changes the prototype');
    assert.equal(ext['__proto__'], 1);
  });

  it('accepts only plain decimal integers, once each, in the GET form', () => {
    assert.equal(parseKeyRequestQuery({ number: '2', size: '512' }, L).size, 512);
    for (const number of ['1e3', '0x10', ' 5', '', '1.0'])
      refuses(() => parseKeyRequestQuery({ number }, L), /integer/);
    refuses(() => parseKeyRequestQuery({ number: ['1', '2'] }, L), /given once/);
    refuses(() => parseKeyRequestQuery({ number: '1', additional_slave_SAE_IDs: 'b' }, L), /only number and size/);
  });
});

describe('key ID rules', () => {
  const id = '6f89fb6f-5fa9-46a5-b69b-e68d7c8ecd58';
  it('takes distinct UUIDs', () => {
    assert.deepEqual(parseKeyIds({ key_IDs: [{ key_ID: id }] }, 128), [id]);
    assert.deepEqual(parseKeyIdQuery({ key_ID: id }), [id]);
  });
  it('refuses everything else', () => {
    refuses(() => parseKeyIds({ key_IDs: [] }, 128), /non-empty/);
    refuses(() => parseKeyIds({ key_IDs: [{ key_ID: id }, { key_ID: id }] }, 128), /duplicates/);
    refuses(() => parseKeyIds({ key_IDs: [{ key_ID: id.toUpperCase() }] }, 128), /UUID/);
    refuses(() => parseKeyIds({ key_IDs: [{ key_ID: id, extra: 1 }] }, 128), /unknown field/);
    refuses(() => parseKeyIds({ key_IDs: [{ key_ID: id }], key_IDs_extension: 'x' }, 128), /object/);
    refuses(() => parseKeyIds({ key_IDs: Array.from({ length: 3 }, () => ({ key_ID: id })) }, 2), /at most/);
    refuses(() => parseKeyIdQuery({}), /required/);
    refuses(() => parseKeyIdQuery({ key_ID: [id, id] }), /POST for several/);
  });
});

describe('limits', () => {
  it('finds unsound configurations', () => {
    assert.deepEqual(checkLimits(L), []);
    assert.equal(checkLimits({ ...L, keySize: 100 }).length, 1);
    assert.ok(checkLimits({ ...L, minKeySize: 512, keySize: 256 }).some((p) => p.includes('<=')));
    assert.equal(checkLimits({ ...L, maxSaeIdCount: -1 }).length, 1);
  });
});
