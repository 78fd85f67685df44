import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { NetworkView } from '../../src/dashboard/network.js';
import type { KmeOverview } from '../../src/kme/observability/overview.js';
import { IntegrationReporter } from '../../src/integrations/reporter.js';
import { KmeClient } from '../../src/sae/kme-client.js';
import { emptyFingerprints, findLeaks, fingerprint } from '../helpers/log-leaks.js';
import { operatorAt, readEvents } from '../helpers/operator.js';
import { TestClient } from '../helpers/sae-client.js';
import { eventually, startSites, type TwoSites } from '../helpers/two-kmes.js';

type Keys = { keys: Array<{ key_ID: string; key: string }> };

describe('operator endpoints: overview, events, dashboard files, integration reports', () => {
  let sites: TwoSites;
  let opA: TestClient;
  let opB: TestClient;
  let anonymous: TestClient;
  before(async () => {
    sites = await startSites({ operator: 'operator', access: { admins: ['sae-a2'] } });
    opA = operatorAt(sites, 'kme-a');
    opB = operatorAt(sites, 'kme-b');
    const port = sites.deployment.configs.find((c) => c.kme === 'kme-a')!.config.sae_api.port;
    anonymous = new TestClient(`https://127.0.0.1:${port}`, { ca: sites.deployment.ca });
    await eventually(
      async () =>
        ((await sites.sae('sae-a1').get('/api/v1/keys/sae-b1/status')).body as { stored_key_count: number })
          .stored_key_count > 20,
      10_000,
      'key material',
    );
  });
  after(async () => {
    await Promise.all([opA.close(), opB.close(), anonymous.close()]);
    await sites.stop();
  });

  it('are for administrators only: the operator certificate or an admin SAE', async () => {
    for (const path of [
      '/api/v1/admin/overview',
      '/api/v1/admin/events',
      '/metrics',
      '/dashboard/',
      '/dashboard/app.js',
    ]) {
      assert.equal((await anonymous.get(path)).status, 401, `${path} without a certificate`);
      assert.equal((await sites.sae('sae-a1').get(path)).status, 401, `${path} for an SAE that is no admin`);
    }
    assert.equal((await opA.get('/api/v1/admin/overview')).status, 200);
    assert.equal((await sites.sae('sae-a2').get('/api/v1/admin/overview')).status, 200, 'an SAE in access.admins');
    // The operator takes no keys: it is not an SAE of any KME.
    assert.equal((await opA.get('/api/v1/keys/sae-b1/status')).status, 401);
  });

  it('serve the dashboard page with a strict content security policy', async () => {
    const page = await opA.get('/dashboard/');
    assert.equal(page.status, 200);
    assert.match(String(page.headers['content-type']), /text\/html/);
    assert.match(String(page.headers['content-security-policy']), /default-src 'none'; script-src 'self'/);
    assert.match(page.text, /<script src="app.js"/);
    const script = await opA.get('/dashboard/app.js');
    assert.equal(script.status, 200);
    assert.match(String(script.headers['content-type']), /javascript/);
  });

  it('list each SAE’s deliveries with shortened key IDs and never the keys', async () => {
    const got = await sites.sae('sae-a1').post('/api/v1/keys/sae-b1/enc_keys', { number: 3, size: 512 });
    assert.equal(got.status, 200);
    const keys = (got.body as Keys).keys;
    const fetched = await sites.sae('sae-b1').post('/api/v1/keys/sae-a1/dec_keys', {
      key_IDs: keys.map((k) => ({ key_ID: k.key_ID })),
    });
    assert.equal(fetched.status, 200);

    const a = (await opA.get('/api/v1/admin/overview')) as { body: KmeOverview; text: string };
    const master = a.body.saes.find((s) => s.SAE_ID === 'sae-a1')!.deliveries[0]!;
    assert.equal(master.role, 'master');
    assert.deepEqual(master.peers, ['sae-b1']);
    assert.equal(master.number, 3);
    assert.equal(master.sizeBits, 512);
    assert.deepEqual(
      master.keyIds,
      keys.map((k) => k.key_ID.slice(0, 8)),
    );
    assert.deepEqual(
      a.body.saes.map((s) => s.SAE_ID),
      ['sae-a1', 'sae-a2'],
      'only the SAEs of this KME',
    );
    const b = (await opB.get('/api/v1/admin/overview')) as { body: KmeOverview; text: string };
    const slave = b.body.saes.find((s) => s.SAE_ID === 'sae-b1')!.deliveries[0]!;
    assert.equal(slave.role, 'slave');
    assert.deepEqual(slave.peers, ['sae-a1']);
    assert.equal(slave.number, 3);
    assert.equal(slave.sizeBits, 512);

    const fp = emptyFingerprints();
    for (const k of keys) fingerprint(Buffer.from(k.key, 'base64'), fp);
    for (const text of [a.text, b.text]) {
      assert.deepEqual(findLeaks(text, fp), []);
      for (const k of keys) assert.ok(!text.includes(k.key_ID), 'only the shortened key ID');
    }
    assert.equal(a.body.keys_delivered.to_masters >= 3, true);
    assert.ok(a.body.peers[0]!.batches >= 1, 'the reservation batch is counted');
    assert.ok(a.body.peers[0]!.lastLagMs! > 0);
  });

  it('stream the network view as server-sent events, once a second', async () => {
    const started = Date.now();
    const events = (await readEvents(opA, '/api/v1/admin/events', 2)) as NetworkView[];
    assert.ok(Date.now() - started >= 800, 'the second event a second after the first');
    const [first, second] = events;
    assert.deepEqual(
      first!.nodes.map((n) => [n.id, n.status]),
      [
        ['kme-a', 'up'],
        ['kme-b', 'unwatched'],
      ],
    );
    assert.equal(first!.links[0]!.link_ID, 'link-a-b');
    assert.ok(second!.generated_at > first!.generated_at);
  });

  it('take integration reports from SAEs of this KME, and refuse bad ones without changing anything', async () => {
    const a1 = sites.sae('sae-a1');
    const keyId = '6f89fb6f-5fa9-46a5-b69b-e68d7c8ecd58';
    const report = {
      kind: 'tunnel',
      name: 'client:127.0.0.1:7000',
      key_ID: keyId,
      rotates_at: '2030-01-01T00:00:00Z',
      state: 'up',
      peer: 'sae-b1',
    };
    const ok = await a1.post('/api/v1/integrations/report', report);
    assert.equal(ok.status, 200);
    assert.equal((ok.body as { rotates_at: number }).rotates_at, Date.parse('2030-01-01T00:00:00Z'));
    const listed = async () => ((await opA.get('/api/v1/admin/overview')).body as KmeOverview).integrations;
    const before = await listed();
    assert.equal(before.length, 1);
    assert.equal(before[0]!.sae, 'sae-a1');
    assert.equal(before[0]!.key_ID, keyId.slice(0, 8));
    assert.equal(before[0]!.stale, false);

    const bad = [
      { ...report, kind: 'vpn' },
      { ...report, state: 'fine' },
      { ...report, rotates_at: 'soon' },
      { ...report, key: 'AAAA' },
      { ...report, name: '' },
      { ...report, peer: 'no/such' },
      [report],
    ];
    for (const body of bad) {
      const res = await a1.post('/api/v1/integrations/report', body);
      assert.equal(res.status, 400, JSON.stringify(body));
      assert.ok((res.body as { message: string }).message.length > 5);
    }
    assert.equal((await opA.post('/api/v1/integrations/report', report)).status, 401, 'the operator is no SAE');
    assert.equal(
      (await sites.saeAt('sae-b1', 'kme-a').post('/api/v1/integrations/report', report)).status,
      401,
      'an SAE of another KME',
    );
    assert.deepEqual(await listed(), before);
  });

  it('the SDK and the integration reporter keep the KME told', async () => {
    const sae = sites.deployment.saes.find((s) => s.id === 'sae-a2')!;
    const port = sites.deployment.configs.find((c) => c.kme === 'kme-a')!.config.sae_api.port;
    const kme = new KmeClient({
      url: `https://127.0.0.1:${port}`,
      ca: sites.deployment.ca,
      cert: sae.cert,
      key: sae.key,
    });
    const errors: Error[] = [];
    const reporter = new IntegrationReporter({
      kme,
      kind: 'ipsec',
      name: 'conn-a2',
      peer: 'sae-b2',
      intervalMs: 200,
      onError: (e) => errors.push(e),
    });
    const entry = async () =>
      (await kme.overview()).integrations.find((i) => i.sae === 'sae-a2' && i.name === 'conn-a2');
    try {
      reporter.start();
      await eventually(async () => (await entry())?.state === 'starting', 5000, 'the first report');
      const rotatesAt = Date.now() + 60_000;
      reporter.update({ keyId: 'b2c7e1d4-0000-4000-8000-000000000001', rotatesAt, state: 'up' });
      await eventually(async () => (await entry())?.key_ID === 'b2c7e1d4', 5000, 'the key in use');
      assert.equal((await entry())!.rotates_at, rotatesAt);
      assert.equal((await entry())!.kind, 'ipsec');
      await reporter.stop();
      assert.equal((await entry())!.state, 'down');
      assert.deepEqual(errors, []);
    } finally {
      await reporter.stop();
      await kme.close();
    }
  });

  it('log each request with a request ID of its own', async () => {
    await sites.sae('sae-a1').get('/api/v1/keys/sae-b1/status');
    await sites.sae('sae-a1').get('/api/v1/keys/sae-b1/status');
    const lines = readFileSync(join(sites.deployment.dir, 'kme-a.log'), 'utf8')
      .split('\n')
      .filter(Boolean)
      .map((l) => JSON.parse(l) as Record<string, unknown>)
      .filter((l) => l['msg'] === 'request' && l['url'] === '/api/v1/keys/sae-b1/status');
    assert.ok(lines.length >= 2);
    const ids = lines.map((l) => l['reqId']);
    assert.ok(
      ids.every((id) => typeof id === 'string' && id.length >= 8),
      'every request line has a reqId',
    );
    assert.equal(new Set(ids).size, ids.length, 'request IDs are unique');
  });
});
