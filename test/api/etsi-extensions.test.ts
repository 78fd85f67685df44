import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { eventually, startSites, type TwoSites } from '../helpers/two-kmes.js';
import { assertError, assertEtsiShape, keyIds, keysOf, UNAUTHORIZED, type Status } from './etsi-helpers.js';
import { assertSameKeys, shown } from '../helpers/redact.js';

const ready = async (sites: TwoSites, count = 50) =>
  eventually(
    async () =>
      ((await sites.sae('sae-a1').get('/api/v1/keys/sae-b1/status')).body as Status).stored_key_count >= count,
    20_000,
    'key material',
  );

describe('ETSI 014 multicast, extensions, errors; the QKS extension endpoints', () => {
  let sites: TwoSites;
  before(async () => {
    sites = await startSites({ saesPerKme: 3, access: { admins: ['sae-a1'] } });
    await ready(sites);
  });
  after(() => sites.stop());

  it('multicast: every listed slave, at either KME, fetches the same keys once', async () => {
    const keys = keysOf(
      await sites.sae('sae-a1').post('/api/v1/keys/sae-b1/enc_keys', {
        number: 2,
        additional_slave_SAE_IDs: ['sae-b2', 'sae-a2', 'sae-a3'],
      }),
    );
    for (const slave of ['sae-b1', 'sae-b2', 'sae-a2', 'sae-a3']) {
      const client = sites.sae(slave);
      assertSameKeys(keysOf(await client.post('/api/v1/keys/sae-a1/dec_keys', keyIds(keys))), keys, slave);
      assertError(await client.post('/api/v1/keys/sae-a1/dec_keys', keyIds(keys)), 400, /not found/);
    }
    assert.equal((await sites.sae('sae-b3').post('/api/v1/keys/sae-a1/dec_keys', keyIds(keys))).status, 400);
  });

  it('multicast: limits, duplicates and unknown SAEs are refused', async () => {
    const a1 = sites.sae('sae-a1');
    const status = (await a1.get('/api/v1/keys/sae-b1/status')).body as Status;
    const tooMany = Array.from({ length: (status['max_SAE_ID_count'] as number) + 1 }, (_, i) => `sae-x${i}`);
    assertError(
      await a1.post('/api/v1/keys/sae-b1/enc_keys', { additional_slave_SAE_IDs: tooMany }),
      400,
      /max_SAE_ID_count/,
    );
    assertError(
      await a1.post('/api/v1/keys/sae-b1/enc_keys', { additional_slave_SAE_IDs: ['sae-b2', 'sae-b2'] }),
      400,
      /duplicates/,
    );
    // The path's slave named again is a duplicate too, refused the same way.
    for (const repeated of [['sae-b1'], ['sae-b2', 'sae-b1']]) {
      assertError(
        await a1.post('/api/v1/keys/sae-b1/enc_keys', { additional_slave_SAE_IDs: repeated }),
        400,
        'additional_slave_SAE_IDs has duplicates',
      );
    }
    assertError(
      await a1.post('/api/v1/keys/sae-b1/enc_keys', { additional_slave_SAE_IDs: ['sae-nope'] }),
      400,
      /unknown SAE ID/,
    );
    assertError(await a1.post('/api/v1/keys/sae-b1/enc_keys', { additional_slave_SAE_IDs: 'sae-b2' }), 400, /array/);
  });

  it('extension_mandatory: unknown names are refused and named in details', async () => {
    const res = await sites.sae('sae-a1').post('/api/v1/keys/sae-b1/enc_keys', {
      extension_mandatory: [{ abc_route_type: 'direct' }, { abc_transfer_method: 'qkd' }],
    });
    assertError(res, 400, 'not all extension_mandatory parameters are supported');
    assert.deepEqual((res.body as { details: unknown }).details, [
      { extension_mandatory_unsupported: 'abc_route_type is not supported' },
      { extension_mandatory_unsupported: 'abc_transfer_method is not supported' },
    ]);
  });

  it('extension names every JavaScript object has are ordinary unknown names, not duplicates', async () => {
    const a1 = sites.sae('sae-a1');
    const json = { 'content-type': 'application/json' };
    const names = ['constructor', 'toString', '__proto__', 'hasOwnProperty'];
    // Raw JSON: an object literal would set a prototype, not a "__proto__" name.
    const list = `[${names.map((n) => `{"${n}": {"x": 1}}`).join(',')}]`;
    const res = await a1.post('/api/v1/keys/sae-b1/enc_keys', `{"extension_mandatory": ${list}}`, json);
    assertError(res, 400, 'not all extension_mandatory parameters are supported');
    assert.deepEqual(
      (res.body as { details: unknown }).details,
      names.map((n) => ({ extension_mandatory_unsupported: `${n} is not supported` })),
    );
    keysOf(await a1.post('/api/v1/keys/sae-b1/enc_keys', `{"extension_optional": ${list}}`, json));
    assertError(
      await a1.post('/api/v1/keys/sae-b1/enc_keys', '{"extension_optional": [{"toString": 1}, {"toString": 2}]}', json),
      400,
      'extension_optional names toString more than once',
    );
  });

  it('extension_mandatory: a known extension that cannot be met is refused; one that can is honoured', async () => {
    const a1 = sites.sae('sae-a1');
    const unmet = await a1.post('/api/v1/keys/sae-b1/enc_keys', {
      extension_mandatory: [{ qks_key_source: 'qkd-device' }],
    });
    assertError(unmet, 400, 'not all extension_mandatory request options could be met');
    keysOf(await a1.post('/api/v1/keys/sae-b1/enc_keys', { extension_mandatory: [{ qks_key_source: 'simulated' }] }));
    keysOf(await a1.post('/api/v1/keys/sae-b1/enc_keys', { extension_optional: [{ abc_anything: { x: 1 } }] }));
    assertError(
      await a1.post('/api/v1/keys/sae-b1/enc_keys', { extension_optional: { a: 1 } }),
      400,
      /array of objects/,
    );
  });

  it('unknown endpoints and methods are 400, never 404 or 405', async () => {
    const a1 = sites.sae('sae-a1');
    for (const res of [
      await a1.get('/api/v1/keys/sae-b1/nothing'),
      await a1.get('/'),
      await a1.call('PUT', '/api/v1/keys/sae-b1/enc_keys', {}),
      await a1.call('DELETE', '/api/v1/keys/sae-b1/status'),
      await a1.post('/api/v1/keys/sae-b1/status', {}),
    ]) {
      assertError(res, 400);
    }
  });

  it('malformed bodies are 400 with a clear message', async () => {
    const a1 = sites.sae('sae-a1');
    assertError(
      await a1.post('/api/v1/keys/sae-b1/enc_keys', '{"number":', { 'content-type': 'application/json' }),
      400,
      /not valid JSON/,
    );
    assertError(
      await a1.post('/api/v1/keys/sae-b1/enc_keys', 'number=1', { 'content-type': 'text/plain' }),
      400,
      /Content-Type/,
    );
    assertError(
      await a1.post('/api/v1/keys/sae-b1/enc_keys', JSON.stringify({ x: 'y'.repeat(70_000) }), {
        'content-type': 'application/json',
      }),
      400,
      /too large/,
    );
    assertError(await a1.post('/api/v1/keys/sae-a1/dec_keys', { key_IDs: [{ key_ID: 'not-a-uuid' }] }), 400, /UUID/);
    assertError(await a1.post('/api/v1/keys/sae-b1/dec_keys', []), 400);
  });

  it('the log_level preference changes what the KME logs about that SAE', async () => {
    const a1 = sites.sae('sae-a1');
    const a3 = sites.sae('sae-a3');
    const logged = () =>
      readFileSync(join(sites.deployment.dir, 'kme-a.log'), 'utf8')
        .split('\n')
        .filter(Boolean)
        .map((l) => JSON.parse(l) as { sae?: string; msg?: string; url?: string })
        .filter((e) => e.sae === 'sae-a3' && e.msg === 'request' && e.url === '/api/v1/keys/sae-b1/status').length;
    const setLevel = async (level: string) => {
      const res = await a1.post('/api/v1/preferences/preference', {
        name: 'log_level',
        value: level,
        SAE_ID: 'sae-a3',
      });
      assert.equal(res.status, 200, shown(res));
    };
    try {
      assert.equal((await a3.get('/api/v1/keys/sae-b1/status')).status, 200);
      await eventually(() => logged() === 1, 3000, 'info: the request is logged');
      await setLevel('warn');
      for (let i = 0; i < 3; i++) assert.equal((await a3.get('/api/v1/keys/sae-b1/status')).status, 200);
      await new Promise((r) => setTimeout(r, 300));
      assert.equal(logged(), 1, 'warn: requests that went well are not logged');
      await setLevel('debug');
      assert.equal((await a3.get('/api/v1/keys/sae-b1/status')).status, 200);
      await eventually(() => logged() === 2, 3000, 'debug: logged again');
    } finally {
      await setLevel('info');
    }
  });

  it('preferences: read by every SAE, changed only by an admin, per SAE', async () => {
    const a1 = sites.sae('sae-a1');
    const a2 = sites.sae('sae-a2');
    const own = await a2.get('/api/v1/preferences');
    assert.deepEqual(own.body, { SAE_ID: 'sae-a2', preferences: { key_exchange_timeout: 30, log_level: 'info' } });
    const refused = await a2.post('/api/v1/preferences/preference', { name: 'log_level', value: 'debug' });
    assert.equal(refused.status, 401);
    assert.deepEqual(refused.body, UNAUTHORIZED);
    const set = await a1.post('/api/v1/preferences/preference', {
      name: 'key_exchange_timeout',
      value: 12,
      SAE_ID: 'sae-a2',
    });
    assert.equal(set.status, 200, shown(set));
    assert.deepEqual((await a2.get('/api/v1/preferences')).body, {
      SAE_ID: 'sae-a2',
      preferences: { key_exchange_timeout: 12, log_level: 'info' },
    });
    assert.equal(
      ((await a1.get('/api/v1/preferences')).body as { preferences: { key_exchange_timeout: number } }).preferences
        .key_exchange_timeout,
      30,
    );
    assertError(
      await a1.post('/api/v1/preferences/preference', { name: 'colour', value: 'blue' }),
      400,
      /unknown preference/,
    );
    assertError(
      await a1.post('/api/v1/preferences/preference', { name: 'log_level', value: 'loud' }),
      400,
      /log_level must be/,
    );
    assertError(await a1.post('/api/v1/preferences/preference', { name: 'key_exchange_timeout', value: 0 }), 400);
    assertError(
      await a1.post('/api/v1/preferences/preference', { name: 'log_level', value: 'warn', SAE_ID: 'sae-zz' }),
      400,
      /unknown SAE/,
    );
  });

  it('info and preferences answer only SAEs of this KME, like the key routes', async () => {
    // sae-b1's certificate is valid (same CA, a configured SAE) but kme-a does not serve it.
    const stranger = sites.saeAt('sae-b1', 'kme-a');
    for (const path of ['/api/v1/information/info', '/api/v1/preferences', '/api/v1/keys/sae-a1/status']) {
      const res = await stranger.get(path);
      assert.deepEqual([res.status, res.body], [401, UNAUTHORIZED], path);
    }
    assert.equal((await sites.sae('sae-b1').get('/api/v1/information/info')).status, 200, 'at its own KME');
  });

  it('info: the attached key source, its protocol and state', async () => {
    const res = await sites.sae('sae-b1').get('/api/v1/information/info');
    assertEtsiShape(res);
    const info = res.body as { KME_ID: string; key_sources: Array<Record<string, unknown>> };
    assert.equal(info.KME_ID, 'kme-b');
    assert.equal(info.key_sources.length, 1);
    const src = info.key_sources[0]!;
    assert.equal(src['link_ID'], 'link-a-b');
    assert.equal(src['peer_KME_ID'], 'kme-a');
    assert.equal(src['kind'], 'simulated');
    assert.match(src['protocol'] as string, /simulator/);
    assert.equal(src['state'], 'running');
    assert.ok((src['own_blocks'] as number) > 0);
  });
});

describe('ETSI 014 limits and shortages', () => {
  let sites: TwoSites;
  before(async () => {
    sites = await startSites({ rateBps: 2560, capacityBlocks: 40, limits: { max_SAE_ID_count: 0 } });
    await ready(sites, 1);
  });
  after(() => sites.stop());

  it('max_SAE_ID_count 0 turns multicast off, and says so', async () => {
    const a1 = sites.sae('sae-a1');
    assert.equal(((await a1.get('/api/v1/keys/sae-b1/status')).body as Status)['max_SAE_ID_count'], 0);
    assertError(
      await a1.post('/api/v1/keys/sae-b1/enc_keys', { additional_slave_SAE_IDs: ['sae-b2'] }),
      400,
      /not supported/,
    );
  });

  it('not enough key material is 503 with an Error body, and takes nothing', async () => {
    const a1 = sites.sae('sae-a1');
    const delivered = async () =>
      ((await a1.get('/api/v1/information/info')).body as { keys_delivered: unknown }).keys_delivered;
    const before = await delivered();
    assertError(await a1.post('/api/v1/keys/sae-b1/enc_keys', { number: 100 }), 503, /not enough key material/);
    assert.deepEqual(await delivered(), before, 'a refused request hands out nothing');
    // What is there can still be had: nothing was burned by the refusal.
    const stored = ((await a1.get('/api/v1/keys/sae-b1/status')).body as Status).stored_key_count;
    keysOf(await a1.post('/api/v1/keys/sae-b1/enc_keys', { number: stored }));
  });
});
