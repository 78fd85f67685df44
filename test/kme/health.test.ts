import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { operatorAt } from '../helpers/operator.js';
import type { TestClient } from '../helpers/sae-client.js';
import { eventually, startSites, type TwoSites } from '../helpers/two-kmes.js';

interface Health {
  KME_ID: string;
  status: 'ok' | 'degraded' | 'down';
  checks: Array<{ name: string; ok: boolean; detail: string }>;
}

/** GET /api/v1/admin/health on real KMEs: what a service manager or a load balancer asks. */
describe('a KME says whether it can deliver keys', () => {
  let sites: TwoSites;
  let op: TestClient;
  before(async () => {
    sites = await startSites({ operator: 'operator', rateBps: 256_000, capacityBlocks: 2000 });
    op = operatorAt(sites, 'kme-a');
  });
  after(async () => {
    await op.close();
    await sites.stop();
  });
  const health = async () => {
    const res = await op.get('/api/v1/admin/health');
    return { code: res.status, body: res.body as Health };
  };

  it('ok with its store, link and peer usable; degraded when its peer fails; administrators only', async () => {
    await eventually(async () => (await health()).body.status === 'ok', 30_000, 'a healthy KME');
    const { code, body } = await health();
    assert.equal(code, 200);
    assert.equal(body.KME_ID, 'kme-a');
    assert.deepEqual(
      body.checks.map((c) => c.name).filter((n) => !n.startsWith('crl')),
      ['store', 'link link-a-b', 'peer kme-b'],
    );
    assert.ok(body.checks.every((c) => c.ok));

    // An SAE is no administrator.
    assert.equal((await sites.sae('sae-a1').get('/api/v1/admin/health')).status, 401);

    // The peer goes away; the next request that needs it fails, and health says so.
    await sites.stopKme('kme-b');
    const refused = await sites.sae('sae-a1').post('/api/v1/keys/sae-b1/enc_keys', { number: 1 });
    assert.equal(refused.status, 503);
    await eventually(async () => (await health()).body.status !== 'ok', 10_000, 'health to notice');
    const after = await health();
    assert.equal(after.code, 200, 'degraded is still serving: keys for other KMEs would be delivered');
    assert.equal(after.body.status, 'degraded');
    const peer = after.body.checks.find((c) => c.name === 'peer kme-b')!;
    assert.equal(peer.ok, false);
    assert.match(peer.detail, /^last exchange failed: /);
  });
});
