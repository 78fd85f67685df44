import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { buildNetwork } from '../../src/dashboard/network.js';
import { renderStatus } from '../../src/dashboard/status-view.js';
import type { KmeOverview, LinkOverview } from '../../src/kme/observability/overview.js';
import { operatorAt } from '../helpers/operator.js';
import type { TestClient } from '../helpers/sae-client.js';
import { eventually, startSites, type TwoSites } from '../helpers/two-kmes.js';

/** kme-a's end of the link, as the dashboard and `qks status` get it. */
async function linkAt(op: TestClient): Promise<{ link: LinkOverview; overview: KmeOverview }> {
  const overview = (await op.get('/api/v1/admin/overview')).body as KmeOverview;
  return { link: overview.links[0]!, overview };
}

/**
 * A new link is `starting`, not degraded: until its first block, then while its pool fills for the
 * first time (below 10 % of its capacity). Real KMEs on the shared-seed simulator, whose first
 * block at kme-a comes five seconds after the link's epoch.
 */
describe('a link that has just started', () => {
  let sites: TwoSites;
  let op: TestClient;
  before(async () => {
    // 100 blocks a second, half of them kme-a's: 200 of 2,000 (the low mark) in about 4 s.
    sites = await startSites({
      operator: 'operator',
      rateBps: 25_600,
      capacityBlocks: 2000,
      linkLagMs: { 'kme-a': 5000 },
    });
    op = operatorAt(sites, 'kme-a');
  });
  after(async () => {
    await op.close();
    await sites.stop();
  });

  it('is starting until its first block, then while its pool fills, then healthy', async () => {
    const first = await linkAt(op);
    assert.equal(first.link.own_blocks, 0);
    assert.equal(first.link.health, 'starting');
    assert.deepEqual(first.link.health_reasons, ['waiting for the first block']);
    const view = buildNetwork([{ KME_ID: 'kme-a', reachable: true, overview: first.overview }], Date.now());
    const row = renderStatus(view)
      .split('\n')
      .find((l) => l.startsWith('link-a-b'))!;
    assert.match(row, /^link-a-b\s+kme-a - kme-b\s+starting\s/);
    assert.match(renderStatus(view), /\n {2}link-a-b: waiting for the first block\n/);

    let filling: LinkOverview | undefined;
    await eventually(
      async () => {
        const { link } = await linkAt(op);
        if (link.health_reasons[0]?.startsWith('pool filling')) filling = link;
        return filling !== undefined;
      },
      10_000,
      'the first block',
    );
    assert.equal(filling!.health, 'starting');
    assert.ok(filling!.own_blocks > 0 && filling!.pool_fill < 0.1, `${filling!.own_blocks} blocks`);
    assert.deepEqual(filling!.health_reasons, [`pool filling: ${(filling!.pool_fill * 100).toFixed(0)} % full`]);

    await eventually(async () => (await linkAt(op)).link.health !== 'starting', 15_000, 'the first fill');
    const { link } = await linkAt(op);
    assert.ok(link.pool_fill >= 0.1, `pool ${link.pool_fill}`);
    assert.equal(link.health, 'healthy');
    assert.deepEqual(link.health_reasons, []);
  });
});

describe('a link whose keys are taken while its pool fills for the first time', () => {
  let sites: TwoSites;
  let op: TestClient;
  before(async () => {
    // The low mark, 10,000 blocks at kme-a, is minutes away at this rate.
    sites = await startSites({ operator: 'operator', rateBps: 25_600, capacityBlocks: 100_000 });
    op = operatorAt(sites, 'kme-a');
  });
  after(async () => {
    await op.close();
    await sites.stop();
  });

  it('is degraded once keys are taken from its low pool: from then on a low pool is a low pool', async () => {
    // More keys taken at once than the link refills (about 50 blocks a second here) between two looks.
    await eventually(async () => (await linkAt(op)).link.own_blocks >= 200, 15_000, 'some blocks');
    const before = (await linkAt(op)).link;
    assert.equal(before.health, 'starting');
    const got = await sites.sae('sae-a1').post('/api/v1/keys/sae-b1/enc_keys', { number: 128 });
    assert.equal(got.status, 200);
    const after = (await linkAt(op)).link;
    assert.ok(after.own_blocks < before.own_blocks, `${after.own_blocks} < ${before.own_blocks}`);
    assert.equal(after.health, 'degraded');
    assert.deepEqual(after.health_reasons, [`pool ${(after.pool_fill * 100).toFixed(0)} % full`]);
    // It does not go back to starting as the pool grows again.
    await new Promise((r) => setTimeout(r, 1000));
    assert.equal((await linkAt(op)).link.health, 'degraded');
  });
});
