import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { buildNetwork } from '../../src/dashboard/network.js';
import { renderStatus } from '../../src/dashboard/status-view.js';
import type { KmeOverview } from '../../src/kme/observability/overview.js';
import { expectedSecretPerPulse } from '../../src/physics/detector.js';
import { DEFAULT_QKD } from '../../src/sources/qkd/settings.js';
import { operatorAt } from '../helpers/operator.js';
import type { TestClient } from '../helpers/sae-client.js';
import { startSites, type TwoSites } from '../helpers/two-kmes.js';

interface Info {
  key_sources: Array<{ rate_bps: number | null; expected_rate_bps?: number; stats?: { framesDone: number } }>;
}

/**
 * A QKD link before its first frame (100 kHz, 4·10^9-pulse frames: the first would end after 11 hours):
 * no rate is shown as measured; the model's figure appears only labelled as expected.
 */
describe('a QKD link before its first frame', () => {
  let sites: TwoSites;
  let op: TestClient;
  const rateHz = 100_000;
  const expected = expectedSecretPerPulse({ ...DEFAULT_QKD.physics, repetitionRateHz: rateHz }) * rateHz;
  before(async () => {
    sites = await startSites({
      operator: 'operator',
      source: 'qkd',
      qkd: { repetition_rate_hz: rateHz, frame_pulses: 4_000_000_000 },
    });
    op = operatorAt(sites, 'kme-a');
  });
  after(async () => {
    await op.close();
    await sites.stop();
  });

  it('reports no measured rate, and the model rate only as expected_rate_bps', async () => {
    const info = (await sites.sae('sae-a1').get('/api/v1/information/info')).body as Info;
    const source = info.key_sources[0]!;
    assert.equal(source.stats!.framesDone, 0);
    assert.equal(source.rate_bps, null, 'no rate before the first frame');
    assert.ok(Math.abs(source.expected_rate_bps! / expected - 1) < 1e-9, `${source.expected_rate_bps} vs ${expected}`);
  });

  it('the dashboard and `qks status` say "no frame yet", with the expected rate labelled, and "starting"', async () => {
    const overview = (await op.get('/api/v1/admin/overview')).body as KmeOverview;
    const link = overview.links[0]!;
    assert.equal(link.rate_bps, null);
    assert.equal(link.expected_rate_bps, Math.round(expected));
    const view = buildNetwork([{ KME_ID: 'kme-a', reachable: true, overview }], Date.now());
    assert.equal(view.links[0]!.rate_bps, null);
    const text = renderStatus(view);
    const row = text.split('\n').find((l) => l.startsWith('link-a-b'))!;
    assert.match(row, / no frame yet \(expected \d+ b\/s\) /);
    // Starting, not down or degraded: the link is waiting for its first frame.
    assert.equal(link.health, 'starting');
    assert.deepEqual(link.health_reasons, ['waiting for the first frame']);
    assert.match(row, /^link-a-b\s+kme-a - kme-b\s+starting\s/);
    assert.match(text, /\n {2}link-a-b: waiting for the first frame\n/);
    // The browser's formatter says the same (the dashboard's own script, from the source tree).
    const script = new URL('../../../src/dashboard/public/app.js', import.meta.url).href;
    const { linkRate } = (await import(script)) as { linkRate: (l: unknown) => string };
    assert.equal(linkRate(view.links[0]), `no frame yet (expected ${Math.round(expected)} b/s)`);
  });
});
