import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { KmeClient, KmeError } from '../../src/sae/kme-client.js';
import { assertSameKeys } from '../helpers/redact.js';
import { startSites, type TwoSites } from '../helpers/two-kmes.js';
import { saeOf } from './sae-fixture.js';

describe('KmeClient, the SDK’s ETSI client', () => {
  let sites: TwoSites;
  // A slow link: about 10 blocks of kme-a's own a second, so a request for 8 keys waits for material.
  before(async () => {
    sites = await startSites({ rateBps: 5120 });
  });
  after(() => sites.stop());

  it('carries the KME’s status and message, and does not retry a 400', async () => {
    const { kme } = saeOf(sites, 'sae-a1');
    const started = Date.now();
    await assert.rejects(kme.getKeys('sae-b1', { size: 7 }), (err: KmeError) => {
      assert.ok(err instanceof KmeError);
      assert.equal(err.status, 400);
      assert.equal(err.message, 'size shall be a multiple of 8');
      return true;
    });
    assert.ok(Date.now() - started < 200, 'no backoff for a bad request');
    await kme.close();
  });

  it('retries a 503 with backoff, and succeeds once the KME can serve', async () => {
    const sae = sites.deployment.saes.find((s) => s.id === 'sae-a1')!;
    const url = `https://127.0.0.1:${sites.deployment.configs[0]!.config.sae_api.port}`;
    const kme = new KmeClient({
      url,
      ca: sites.deployment.ca,
      cert: sae.cert,
      key: sae.key,
      retries: 8,
      retryBaseMs: 20,
    });
    // Nothing yet for 8 keys: the first attempts get 503; backoff (20, 40, 80, … ms) outlasts the wait.
    const started = Date.now();
    const got = await kme.getKeys('sae-b1', { number: 8 });
    assert.equal(got.keys.length, 8);
    assert.ok(Date.now() - started >= 20, 'it had to wait');
    const b1 = saeOf(sites, 'sae-b1').kme;
    assertSameKeys(
      (
        await b1.getKeysWithIds(
          'sae-a1',
          got.keys.map((k) => k.key_ID),
        )
      ).keys,
      got.keys,
    );
    // The GET forms: enc_keys with number and size as query parameters, dec_keys with one key_ID.
    const one = await kme.getKeysByQuery('sae-b1', 1, 64);
    assert.equal(one.keys.length, 1);
    assert.equal(Buffer.from(one.keys[0]!.key, 'base64').length, 8, 'size 64 bits');
    assertSameKeys((await b1.getKeyWithId('sae-a1', one.keys[0]!.key_ID)).keys, one.keys);
    await Promise.all([kme.close(), b1.close()]);
  });

  it('gives up after its retries with the KME’s 503 message', async () => {
    const { kme } = saeOf(sites, 'sae-a1');
    await assert.rejects(kme.getKeys('sae-b1', { number: 128, size: 8192 }), (err: KmeError) => {
      assert.equal(err.status, 503);
      assert.match(err.message, /not enough key material/);
      return true;
    });
    await kme.close();
  });

  it('reports a refused identity as 401', async () => {
    // An SAE of kme-b, pointed at kme-a.
    const url = `https://127.0.0.1:${sites.deployment.configs[0]!.config.sae_api.port}`;
    const sae = sites.deployment.saes.find((s) => s.id === 'sae-b1')!;
    const wrong = new KmeClient({ url, ca: sites.deployment.ca, cert: sae.cert, key: sae.key });
    await assert.rejects(wrong.status('sae-a1'), (err: KmeError) => err.status === 401);
    await wrong.close();
  });
});
