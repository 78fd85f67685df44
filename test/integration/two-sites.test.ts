import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { eventually, startSites, type TwoSites } from '../helpers/two-kmes.js';
import { assertSameKeys, shown } from '../helpers/redact.js';

interface Container {
  keys: Array<{ key_ID: string; key: string }>;
}

describe('two KMEs joined by a simulated link', () => {
  let sites: TwoSites;
  before(async () => {
    sites = await startSites();
    const a1 = sites.sae('sae-a1');
    await eventually(
      async () => {
        const s = await a1.get('/api/v1/keys/sae-b1/status');
        return (s.body as { stored_key_count: number }).stored_key_count >= 50;
      },
      10_000,
      'key material',
    );
  });
  after(() => sites.stop());

  it('gives the slave at the other site the same keys, once', async () => {
    const a1 = sites.sae('sae-a1');
    const b1 = sites.sae('sae-b1');
    const got = await a1.post('/api/v1/keys/sae-b1/enc_keys', { number: 3, size: 512 });
    assert.equal(got.status, 200, shown(got));
    const keys = (got.body as Container).keys;
    assert.equal(keys.length, 3);
    for (const k of keys) assert.equal(Buffer.from(k.key, 'base64').length, 64);
    const fetched = await b1.post('/api/v1/keys/sae-a1/dec_keys', { key_IDs: keys.map((k) => ({ key_ID: k.key_ID })) });
    assert.equal(fetched.status, 200, shown(fetched));
    assert.deepEqual(Object.keys(fetched.body as object), ['keys']);
    assertSameKeys((fetched.body as Container).keys, keys);
    const again = await b1.post('/api/v1/keys/sae-a1/dec_keys', { key_IDs: [{ key_ID: keys[0]!.key_ID }] });
    assert.equal(again.status, 400);
    assert.deepEqual(again.body, { message: 'one or more keys specified are not found on KME' });
  });
});
