import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { AccessPolicy } from '../../src/domain/access-policy.js';
import { ERROR_TABLE, QksError } from '../../src/domain/errors.js';
import { checkMandatoryExtensions } from '../../src/domain/extensions.js';
import { assembleKey, blocksPerKey, keysFromBlocks, ownerOfBlock } from '../../src/domain/material.js';
import { parsePreference, withDefaults } from '../../src/domain/preferences.js';
import { planSlaves } from '../../src/domain/sae-directory.js';

describe('material', () => {
  const link = { linkId: 'l', endpoints: ['a', 'b'] as const, blockBits: 256 };
  it('alternates block ownership between the two ends', () => {
    assert.deepEqual(
      [0, 1, 2, 3].map((s) => ownerOfBlock(link, s)),
      ['a', 'b', 'a', 'b'],
    );
  });
  it('cuts keys from whole blocks', () => {
    assert.equal(blocksPerKey(256, 64), 1);
    assert.equal(blocksPerKey(256, 256), 1);
    assert.equal(blocksPerKey(256, 264), 2);
    assert.equal(keysFromBlocks(256, 512, 5), 2);
    const key = assembleKey([Buffer.alloc(32, 1), Buffer.alloc(32, 2)], 264);
    assert.equal(key.length, 33);
    assert.deepEqual([key[0], key[31], key[32]], [1, 1, 2]);
  });
});

describe('which KME serves which slave', () => {
  const dir = {
    kmeOf: new Map([
      ['m', 'A'],
      ['s1', 'A'],
      ['s2', 'B'],
      ['s3', 'B'],
      ['s4', 'C'],
    ]),
  };
  it('splits slaves into local ones and ones at one peer', () => {
    assert.deepEqual(planSlaves(dir, 'A', 'm', ['s1', 's2', 's3']), {
      localSlaves: ['s1'],
      remoteSlaves: ['s2', 's3'],
      peerKme: 'B',
      byKme: new Map([['B', ['s2', 's3']]]),
    });
    assert.deepEqual(planSlaves(dir, 'A', 'm', ['s1']), {
      localSlaves: ['s1'],
      remoteSlaves: [],
      peerKme: null,
      byKme: new Map(),
    });
  });
  it('refuses unknown SAEs and the master itself; slaves at two KMEs make a multicast across sites', () => {
    assert.throws(() => planSlaves(dir, 'A', 'm', ['zz']), /unknown SAE ID: zz/);
    assert.throws(() => planSlaves(dir, 'A', 'm', ['m']), /differ/);
    const across = planSlaves(dir, 'A', 'm', ['s2', 's4']);
    assert.equal(across.peerKme, null);
    assert.equal(across.byKme.size, 2);
  });
});

describe('extensions', () => {
  it('names every unsupported mandatory extension', () => {
    assert.throws(
      () => checkMandatoryExtensions({ abc_a: 1, abc_b: 2 }, { sourceKind: 'simulated' }),
      (err: QksError) =>
        err.message === 'not all extension_mandatory parameters are supported' &&
        JSON.stringify(err.details) ===
          JSON.stringify([
            { extension_mandatory_unsupported: 'abc_a is not supported' },
            { extension_mandatory_unsupported: 'abc_b is not supported' },
          ]),
    );
  });
  it('refuses a supported one that cannot be met, accepts one that can', () => {
    assert.throws(
      () => checkMandatoryExtensions({ qks_key_source: 'qkd-device' }, { sourceKind: 'simulated' }),
      /not all extension_mandatory request options could be met/,
    );
    checkMandatoryExtensions({ qks_key_source: 'simulated' }, { sourceKind: 'simulated' });
  });
});

describe('preferences', () => {
  it('validates names and values; fills defaults', () => {
    assert.deepEqual(parsePreference({ name: 'log_level', value: 'debug' }), {
      sae: undefined,
      name: 'log_level',
      value: 'debug',
    });
    assert.equal(parsePreference({ name: 'key_exchange_timeout', value: 5, SAE_ID: 'x' }).sae, 'x');
    assert.throws(() => parsePreference({ name: 'log_level', value: 'loud' }), /log_level must be/);
    assert.throws(() => parsePreference({ name: 'key_exchange_timeout', value: 0 }), /1 to 3600/);
    assert.throws(() => parsePreference({ name: 'x', value: 1 }), /unknown preference/);
    assert.throws(() => parsePreference({ name: 'log_level', value: 'info', more: 1 }), /unknown field/);
    assert.deepEqual(withDefaults({ log_level: 'warn' }), { key_exchange_timeout: 30, log_level: 'warn' });
  });
});

describe('access rules', () => {
  const policy = () =>
    new AccessPolicy({
      admins: ['root'],
      adminScope: 'qks:admin',
      rules: [
        { sae: 'a', slaves: ['b'], maxKeysPerRequest: 4, requestsPerMinute: 2 },
        { sae: 'c', slaves: '*' },
      ],
    });
  it('limits slaves and request size; SAEs without a rule are free', () => {
    const p = policy();
    assert.equal(p.checkKeyRequest('a', ['b'], 4, 0).allowed, true);
    assert.equal(p.checkKeyRequest('a', ['x'], 1, 0).allowed, false);
    assert.equal(p.checkKeyRequest('a', ['b'], 5, 0).allowed, false);
    assert.equal(p.checkKeyRequest('c', ['anyone'], 100, 0).allowed, true);
    assert.equal(p.checkKeyRequest('free', ['anyone'], 100, 0).allowed, true);
  });
  it('limits the request rate with a bucket that refills', () => {
    const p = policy();
    assert.equal(p.checkKeyRequest('a', ['b'], 1, 0).allowed, true);
    assert.equal(p.checkKeyRequest('a', ['b'], 1, 1).allowed, true);
    assert.equal(p.checkKeyRequest('a', ['b'], 1, 2).allowed, false);
    assert.equal(p.checkKeyRequest('a', ['b'], 1, 30_002).allowed, true, 'one token back after half a minute');
  });
  it('lets admins and the admin scope change settings', () => {
    const p = policy();
    assert.equal(p.checkAdmin('root', []).allowed, true);
    assert.equal(p.checkAdmin('a', ['qks:admin']).allowed, true);
    assert.equal(p.checkAdmin('a', ['other']).allowed, false);
  });
});

describe('the error table', () => {
  it('uses only the standard’s statuses, and its exact messages', () => {
    for (const entry of Object.values(ERROR_TABLE)) assert.ok([400, 401, 503].includes(entry.status));
    assert.equal(ERROR_TABLE.SIZE_NOT_MULTIPLE_OF_8.message, 'size shall be a multiple of 8');
    assert.equal(ERROR_TABLE.KEYS_NOT_FOUND.message, 'one or more keys specified are not found on KME');
  });
});
