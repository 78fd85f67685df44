import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { operatorAt, parseMetrics } from '../helpers/operator.js';
import { TestClient } from '../helpers/sae-client.js';
import { eventually, startSites, type TwoSites } from '../helpers/two-kmes.js';

interface Status {
  stored_key_count: number;
  max_key_count: number;
}
interface Info {
  key_sources: Array<{
    link_ID: string;
    own_blocks: number;
    peer_blocks: number;
    capacity_blocks: number;
    rate_bps: number;
  }>;
  keys_waiting_for_slaves: number;
  keys_delivered: { to_masters: number; to_slaves: number };
}

/** /metrics, scraped as Prometheus would, checked against the API's own status and information. */
describe('Prometheus metrics', () => {
  let sites: TwoSites;
  let op: TestClient;
  const scrape = async () => {
    const res = await op.get('/metrics');
    assert.equal(res.status, 200);
    assert.match(String(res.headers['content-type']), /^text\/plain; version=0\.0\.4/);
    return parseMetrics(res.text);
  };
  const value = (m: Map<string, number>, series: string) => m.get(series) ?? 0;
  const STATUS_OK = 'qks_http_requests_total{method="GET",route="/api/v1/keys/:id/status",status="200"}';

  before(async () => {
    sites = await startSites({ operator: 'operator', rateBps: 200_000 });
    op = operatorAt(sites, 'kme-a');
    await eventually(
      async () => ((await sites.sae('sae-a1').get('/api/v1/keys/sae-b1/status')).body as Status).stored_key_count > 200,
      10_000,
      'key material',
    );
  });
  after(async () => {
    await op.close();
    await sites.stop();
  });

  it('pool levels agree with the status and information endpoints', async () => {
    const a1 = sites.sae('sae-a1');
    // The link keeps delivering: what the scrape reads lies between two readings of the API.
    const s1 = (await a1.get('/api/v1/keys/sae-b1/status')).body as Status;
    const i1 = (await a1.get('/api/v1/information/info')).body as Info;
    const m = await scrape();
    const s2 = (await a1.get('/api/v1/keys/sae-b1/status')).body as Status;
    const i2 = (await a1.get('/api/v1/information/info')).body as Info;
    const keys = value(m, 'qks_pool_keys{link="link-a-b"}');
    assert.ok(
      s1.stored_key_count <= keys && keys <= s2.stored_key_count,
      `${s1.stored_key_count} <= ${keys} <= ${s2.stored_key_count}`,
    );
    const own = value(m, 'qks_pool_blocks{link="link-a-b",share="own"}');
    assert.ok(i1.key_sources[0]!.own_blocks <= own && own <= i2.key_sources[0]!.own_blocks);
    const peer = value(m, 'qks_pool_blocks{link="link-a-b",share="peer"}');
    assert.ok(i1.key_sources[0]!.peer_blocks <= peer && peer <= i2.key_sources[0]!.peer_blocks);
    assert.equal(value(m, 'qks_pool_capacity_blocks{link="link-a-b"}'), i1.key_sources[0]!.capacity_blocks);
    assert.equal(value(m, 'qks_link_up{link="link-a-b"}'), 1);
    // After keys are taken: delivered counts agree exactly; the pool reads no lower than just before.
    const taken = await a1.post('/api/v1/keys/sae-b1/enc_keys', { number: 100 });
    assert.equal(taken.status, 200);
    const after = (await a1.get('/api/v1/information/info')).body as Info;
    const m2 = await scrape();
    assert.ok(value(m2, 'qks_pool_blocks{link="link-a-b",share="own"}') >= after.key_sources[0]!.own_blocks);
    assert.equal(value(m2, 'qks_keys_delivered{role="master"}'), after.keys_delivered.to_masters);
    assert.equal(value(m2, 'qks_keys_waiting_for_slaves'), 0, 'no slave is at kme-a');
    const atB = operatorAt(sites, 'kme-b');
    try {
      const mb = parseMetrics((await atB.get('/metrics')).text);
      const infoB = (await sites.sae('sae-b1').get('/api/v1/information/info')).body as Info;
      assert.equal(value(mb, 'qks_keys_waiting_for_slaves'), infoB.keys_waiting_for_slaves);
      assert.ok(infoB.keys_waiting_for_slaves >= 100);
    } finally {
      await atB.close();
    }
  });

  it('the link rate is the rate key arrives at, measured', async () => {
    await eventually(
      async () => value(await scrape(), 'qks_link_key_rate_bps{link="link-a-b"}') > 0,
      10_000,
      'a sample',
    );
    const rate = value(await scrape(), 'qks_link_key_rate_bps{link="link-a-b"}');
    // 200 kbit/s configured; sampling windows make the measured figure wobble a little.
    assert.ok(rate > 120_000 && rate < 280_000, `measured ${rate} bit/s`);
    assert.equal((await scrape()).has('qks_link_qber{link="link-a-b"}'), false, 'the simulator measures no QBER');
  });

  it('count requests per route and status, with a latency histogram', async () => {
    const a1 = sites.sae('sae-a1');
    const m1 = await scrape();
    for (let i = 0; i < 3; i++) assert.equal((await a1.get('/api/v1/keys/sae-b1/status')).status, 200);
    const m2 = await scrape();
    assert.equal(value(m2, STATUS_OK) - value(m1, STATUS_OK), 3);
    const count = 'qks_http_request_duration_seconds_count{method="GET",route="/api/v1/keys/:id/status",status="200"}';
    assert.equal(value(m2, count) - value(m1, count), 3);
    const sum = 'qks_http_request_duration_seconds_sum{method="GET",route="/api/v1/keys/:id/status",status="200"}';
    assert.ok(value(m2, sum) > value(m1, sum));
    const inf =
      'qks_http_request_duration_seconds_bucket{le="+Inf",method="GET",route="/api/v1/keys/:id/status",status="200"}';
    assert.equal(value(m2, inf), value(m2, count));
  });

  it('count refusals by reason', async () => {
    const port = sites.deployment.configs.find((c) => c.kme === 'kme-a')!.config.sae_api.port;
    const anonymous = new TestClient(`https://127.0.0.1:${port}`, { ca: sites.deployment.ca });
    const a1 = sites.sae('sae-a1');
    const m1 = await scrape();
    try {
      assert.equal((await anonymous.get('/api/v1/keys/sae-b1/status')).status, 401);
      assert.equal((await anonymous.get('/api/v1/keys/sae-b1/status')).status, 401);
      assert.equal((await a1.get('/metrics')).status, 401, 'an SAE that is no admin');
      assert.equal((await a1.post('/api/v1/keys/sae-b1/enc_keys', { size: 7 })).status, 400);
      assert.equal(
        (
          await sites
            .sae('sae-b1')
            .get(`/api/v1/keys/sae-a1/dec_keys?key_ID=${'0'.repeat(8)}-0000-4000-8000-000000000000`)
        ).status,
        400,
      );
    } finally {
      await anonymous.close();
    }
    const m2 = await scrape();
    const delta = (reason: string) =>
      value(m2, `qks_refusals_total{reason="${reason}"}`) - value(m1, `qks_refusals_total{reason="${reason}"}`);
    assert.equal(delta('not_authenticated'), 2);
    assert.equal(delta('access_rules'), 1);
    assert.equal(delta('size_not_multiple_of_8'), 1);
    assert.equal(delta('keys_not_found'), 0, 'that refusal happened at kme-b');
  });

  it('synchronisation: round trips to the peer KME, and failures when it is gone', async () => {
    const a1 = sites.sae('sae-a1');
    const m1 = await scrape();
    assert.equal((await a1.post('/api/v1/keys/sae-b1/enc_keys', { number: 2 })).status, 200);
    const m2 = await scrape();
    const batches = 'qks_peer_sync_seconds_count{peer="kme-b"}';
    assert.equal(value(m2, batches) - value(m1, batches), 1);
    assert.ok(
      value(m2, 'qks_peer_sync_seconds_sum{peer="kme-b"}') > value(m1, 'qks_peer_sync_seconds_sum{peer="kme-b"}'),
    );

    await sites.stopKme('kme-b');
    const down = await a1.post('/api/v1/keys/sae-b1/enc_keys', { number: 1 });
    assert.equal(down.status, 503);
    const m3 = await scrape();
    assert.equal(value(m3, 'qks_peer_sync_failures_total{peer="kme-b",reason="unreachable"}'), 1);
    assert.equal(
      value(m3, 'qks_refusals_total{reason="peer_kme_unavailable"}') -
        value(m2, 'qks_refusals_total{reason="peer_kme_unavailable"}'),
      1,
    );
    // Connection refused: the reservation never left, its blocks went back, nothing is to cancel.
    assert.equal(value(m3, 'qks_peer_outbox_cancels'), value(m2, 'qks_peer_outbox_cancels'));
    const overview = (await op.get('/api/v1/admin/overview')).body as {
      peers: Array<{ failures: number; lastFailure: string }>;
    };
    assert.equal(overview.peers[0]!.failures, 1);
    assert.equal(overview.peers[0]!.lastFailure, 'unreachable');
  });
});
