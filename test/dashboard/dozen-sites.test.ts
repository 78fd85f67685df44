import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { pino } from 'pino';
import type { Page } from 'playwright-core';
import { NetworkCollector } from '../../src/dashboard/collector.js';
import { startDashboardServer, type RunningDashboard } from '../../src/dashboard/server.js';
import { renderStatus } from '../../src/dashboard/status-view.js';
import { artifactPath, launchChromium, type Browser } from '../helpers/browser.js';
import { eventually, startSites, type TwoSites } from '../helpers/two-kmes.js';

const KMES = Array.from({ length: 12 }, (_, i) => `kme-s${String(i + 1).padStart(2, '0')}`);

/** Twelve real KMEs in a chain, one `qks dashboard` server watching all of them, a real browser. */
describe('the dashboard with a dozen sites', () => {
  let sites: TwoSites;
  let collector: NetworkCollector;
  let dashboard: RunningDashboard;
  let browser: Browser;
  let page: Page;

  before(async () => {
    sites = await startSites({
      kmes: KMES,
      saesPerKme: 1,
      store: 'memory',
      rateBps: 50_000,
      capacityBlocks: 500,
      operator: 'operator',
    });
    const op = sites.deployment.operator!;
    collector = new NetworkCollector({
      urls: sites.deployment.configs.map((c) => `https://127.0.0.1:${c.config.sae_api.port}`),
      client: { ca: sites.deployment.ca, cert: op.cert, key: op.key },
    });
    dashboard = await startDashboardServer({ view: () => collector.view(), log: pino({ level: 'silent' }) });
    browser = await launchChromium();
    page = await browser.context.newPage();
  });
  after(async () => {
    await browser?.close();
    await dashboard?.close();
    await collector?.close();
    await sites?.stop();
  });

  it('draws every site and link without overlaps', async () => {
    await page.goto(dashboard.url);
    await page.locator('[data-node].up').nth(11).waitFor({ timeout: 20_000 });
    assert.equal(await page.locator('[data-node]').count(), 12);
    assert.equal(await page.locator('[data-link]').count(), 11);
    // Read in one go: the page redraws the topology with every update.
    const { svgBox, boxes } = await page.evaluate((ids) => {
      const rect = (e: Element | null) => {
        const r = e!.getBoundingClientRect();
        return { x: r.x, y: r.y, width: r.width, height: r.height };
      };
      return {
        svgBox: rect(document.querySelector('#topology')),
        boxes: ids.map((id) => rect(document.querySelector(`[data-node="${id}"] circle`))),
      };
    }, KMES);
    for (const [i, a] of boxes.entries()) {
      assert.ok(a.x >= svgBox.x && a.y >= svgBox.y, `${KMES[i]} inside the panel`);
      assert.ok(a.x + a.width <= svgBox.x + svgBox.width && a.y + a.height <= svgBox.y + svgBox.height);
      for (const b of boxes.slice(i + 1)) {
        const apart = a.x + a.width <= b.x || b.x + b.width <= a.x || a.y + a.height <= b.y || b.y + b.height <= a.y;
        assert.ok(apart, `${KMES[i]} overlaps another site`);
      }
    }
    await page.locator('[data-link] line.healthy').nth(10).waitFor({ state: 'attached', timeout: 20_000 });
    await page.screenshot({ path: artifactPath('dashboard', '5-dozen-sites.png'), fullPage: true });
  });

  it('shows keys relayed along the whole chain: the path, and each trusted node passing them on', async () => {
    const master = sites.sae('sae-s011');
    let got = { status: 0, body: null as unknown };
    await eventually(
      async () => (got = await master.get('/api/v1/keys/sae-s121/enc_keys?number=2')).status === 200,
      20_000,
      'keys from kme-s01 for kme-s12',
    );
    const path = KMES.join(' ');
    await page.locator(`[data-relay-path="${path}"]`).waitFor({ timeout: 15_000 });
    assert.match((await page.locator('#relay-counts').textContent()) ?? '', /kme-s06: 0 now, 0 started, 1 passed on/);
    const text = renderStatus(await collector.view());
    assert.match(text, new RegExp(`RECENT RELAY PATHS\\n.*${KMES.join(' > ')}\\s+2 keys\\s+ok`));
    assert.match(text, /kme-s01\s+0 now\s+started 1, 0 failed\s+passed on 0, 0 failed/);
    assert.match(text, /kme-s06\s+0 now\s+started 0, 0 failed\s+passed on 1, 0 failed/);
    assert.ok(!(got.body as { keys: Array<{ key: string }> }).keys.some((k) => text.includes(k.key)));
    await page.screenshot({ path: artifactPath('dashboard', '7-relayed-keys.png'), fullPage: true });
  });

  it('shows a site that stops answering, and its links, as down', async () => {
    await sites.stopKme('kme-s05');
    await page.locator('[data-node="kme-s05"].unreachable').waitFor({ state: 'attached', timeout: 15_000 });
    for (const link of ['link-s04-s05', 'link-s05-s06']) {
      await page.locator(`[data-link="${link}"] line.down`).waitFor({ state: 'attached', timeout: 10_000 });
    }
    assert.equal(await page.locator('[data-link] line.down').count(), 2, 'only the two links of that site');
    const text = renderStatus(await collector.view());
    assert.match(text, /11\/12 KMEs answering/);
    assert.match(text, /link-s04-s05\s+kme-s04 - kme-s05\s+down/);
    assert.match(text, /kme-s05\s+unreachable/);
    await page.screenshot({ path: artifactPath('dashboard', '6-site-down.png'), fullPage: true });
  });
});
