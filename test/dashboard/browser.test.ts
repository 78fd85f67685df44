import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { Page } from 'playwright-core';
import type { DemoManifest } from '../../src/cli/demo.js';
import { artifactPath, launchChromium, type Browser } from '../helpers/browser.js';
import { archiveAndCheckLogs, emptyFingerprints, findLeaks, fingerprint } from '../helpers/log-leaks.js';
import { TestClient } from '../helpers/sae-client.js';
import { eventually } from '../helpers/two-kmes.js';

const BIN = join(process.cwd(), 'bin', 'qks.js');
type Keys = { keys: Array<{ key_ID: string; key: string }> };

/** The first whole number in a piece of text, without thousands separators. */
const numberIn = (text: string | null) => Number(/[\d,]+/.exec(text ?? '')?.[0]?.replace(/,/g, '') ?? NaN);

describe('the dashboard in a real browser, on the demo network', () => {
  const dir = mkdtempSync(join(tmpdir(), 'qks-dashboard-test-'));
  const manifestFile = join(dir, 'manifest.json');
  const demo = spawn(process.execPath, [BIN, 'demo', '--dir', join(dir, 'site'), '--manifest', manifestFile], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  demo.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
  let manifest: DemoManifest;
  let browser: Browser;
  let page: Page;
  let a1: TestClient;
  let b1: TestClient;
  const received: string[] = [];

  before(async () => {
    await eventually(() => existsSync(manifestFile), 30_000, 'the demo manifest');
    manifest = JSON.parse(readFileSync(manifestFile, 'utf8')) as DemoManifest;
    const sae = (id: string) => manifest.saes.find((s) => s.id === id)!;
    a1 = new TestClient(manifest.kmes[0]!.url, { ca: manifest.ca, cert: sae('sae-a1').cert, key: sae('sae-a1').key });
    b1 = new TestClient(manifest.kmes[1]!.url, { ca: manifest.ca, cert: sae('sae-b1').cert, key: sae('sae-b1').key });
    browser = await launchChromium();
    page = await browser.context.newPage();
  });
  after(async () => {
    await browser?.close();
    await Promise.all([a1?.close(), b1?.close()]);
    demo.kill('SIGINT');
    await new Promise((r) => demo.once('exit', r));
    archiveAndCheckLogs(dir);
    rmSync(dir, { recursive: true, force: true });
  });

  it('the demo prints the dashboard URL; the topology shows both sites and the link', async () => {
    await eventually(() => stdout.includes(manifest.dashboard!), 5000, 'the demo printing the dashboard URL');
    const res = await page.goto(manifest.dashboard!);
    assert.equal(res!.status(), 200);
    await page.locator('#connection', { hasText: 'live' }).waitFor({ timeout: 10_000 });
    for (const kme of ['kme-a', 'kme-b']) {
      await page.locator(`[data-node="${kme}"].up`).waitFor({ timeout: 10_000 });
      assert.equal(await page.locator(`[data-node="${kme}"] .sub`).first().textContent(), kme);
    }
    const edge = page.locator('[data-link="link-a-b"] line');
    await edge.waitFor({ state: 'attached' });
    assert.match((await edge.getAttribute('class'))!, /^edge (starting|healthy|degraded|down)/);
    const label = await page.locator('[data-link="link-a-b"] [data-field="label"]').textContent();
    // The demo's QKD link simulator measures its QBER (a few per cent over 25 km). Before its first
    // frame the rate reads "no frame yet (expected … kb/s)" (test/dashboard/first-frame.test.ts).
    assert.match(label!, /b\/s\)? · QBER \d+\.\d+ % · pool \d/, 'rate, QBER and pool fill');
    await page.screenshot({ path: artifactPath('dashboard', '1-topology.png'), fullPage: true });
  });

  it('numbers change as the link makes key and SAEs take it', async () => {
    const pool = page.locator('[data-field="pool-kme-a"]');
    const shown = async () => numberIn(await pool.textContent());
    const first = await shown();
    await eventually(async () => (await shown()) > first, 10_000, 'the pool growing');
    // Two requests of 16 keys of 4096 bits take 512 blocks. The demo's link, with its detectors' dead time
    // and afterpulsing, makes about 14 kbit/s, and each KME owns every other block: about 25 s to 700.
    await eventually(async () => (await shown()) > 700, 120_000, 'enough key material');
    const before = await shown();
    const delivered = numberIn(await page.locator('[data-node="kme-a"] [data-field="node-sub"]').textContent());
    for (let i = 0; i < 2; i++) {
      const got = await a1.post('/api/v1/keys/sae-b1/enc_keys', { number: 16, size: 4096 });
      assert.equal(got.status, 200);
      received.push(...(got.body as Keys).keys.map((k) => k.key));
    }
    await eventually(async () => (await shown()) < before, 10_000, 'the pool shrinking after keys were taken');
    await eventually(
      async () =>
        numberIn(await page.locator('[data-node="kme-a"] [data-field="node-sub"]').textContent()) === delivered + 32,
      10_000,
      'the delivered count',
    );
  });

  it('a delivery appears in the SAE view after a key request', async () => {
    const got = await a1.get('/api/v1/keys/sae-b1/enc_keys?number=1');
    assert.equal(got.status, 200);
    const key = (got.body as Keys).keys[0]!;
    received.push(key.key);
    const short = key.key_ID.slice(0, 8);
    await page.locator('[data-sae="sae-a1"] tbody tr', { hasText: short }).first().waitFor({ timeout: 10_000 });
    const row = await page.locator('[data-sae="sae-a1"] tbody tr', { hasText: short }).first().textContent();
    assert.match(row!, /master\s*sae-b1\s*1 × 256 bit/);
    assert.equal((await b1.get(`/api/v1/keys/sae-a1/dec_keys?key_ID=${key.key_ID}`)).status, 200);
    await page.locator('[data-sae="sae-b1"] tbody tr', { hasText: short }).first().waitFor({ timeout: 10_000 });
    await page.screenshot({ path: artifactPath('dashboard', '2-deliveries.png'), fullPage: true });

    const fp = emptyFingerprints();
    for (const k of received) fingerprint(Buffer.from(k, 'base64'), fp);
    assert.deepEqual(findLeaks(await page.content(), fp), [], 'no key material on the page');
    assert.ok(!(await page.content()).includes(key.key_ID), 'key IDs shortened');
  });

  it('integrations that report in are listed with their key and next rotation', async () => {
    const rotatesAt = Date.now() + 120_000;
    const report = {
      kind: 'tunnel',
      name: 'client:127.0.0.1:7000',
      key_ID: '6f89fb6f-5fa9-46a5-b69b-e68d7c8ecd58',
      rotates_at: rotatesAt,
      state: 'up',
      peer: 'sae-b1',
    };
    assert.equal((await a1.post('/api/v1/integrations/report', report)).status, 200);
    const row = page.locator('#integrations tbody tr', { hasText: 'client:127.0.0.1:7000' });
    await row.waitFor({ timeout: 10_000 });
    assert.match(
      (await row.textContent())!,
      /sae-a1\s*tunnel\s*client:127\.0\.0\.1:7000\s*sae-b1\s*6f89fb6f\s*in (1 min|2 min|\d+ s)/,
    );
    await page.screenshot({ path: artifactPath('dashboard', '3-integrations.png'), fullPage: true });
  });

  it('refuses requests without the access token, and the KME’s own dashboard without a certificate', async () => {
    const fresh = await browser.context.newPage();
    const origin = new URL(manifest.dashboard!).origin;
    // The profile holds the dashboard's cookie: without it, this browser is a stranger.
    await browser.context.clearCookies();
    try {
      const page401 = await fresh.goto(`${origin}/dashboard/`);
      assert.equal(page401!.status(), 401);
      assert.match(await fresh.content(), /access token/);
      const events = await fresh.goto(`${origin}/api/v1/admin/events`);
      assert.equal(events!.status(), 401);
      const wrong = await fresh.goto(`${origin}/dashboard/?token=not-the-token`);
      assert.equal(wrong!.status(), 401);
      // The KME serves the same dashboard to administrators only; the browser has no certificate.
      // (Chromium may show its own error page for a 401 without a page to render, so goto may fail.)
      const kmeUrl = `${manifest.kmes[0]!.url}/dashboard/`;
      const [kme] = await Promise.all([
        fresh.waitForResponse((r) => r.url() === kmeUrl),
        fresh.goto(kmeUrl).catch(() => null),
      ]);
      assert.equal(kme.status(), 401);
      // Chromium may still be swapping in its error page: wait for it, and try the picture again.
      await fresh.waitForLoadState().catch(() => undefined);
      for (let attempt = 1; ; attempt++) {
        try {
          await fresh.screenshot({ path: artifactPath('dashboard', '4-refused.png') });
          break;
        } catch (err) {
          if (attempt >= 5) throw err;
          await new Promise((r) => setTimeout(r, 200));
        }
      }
    } finally {
      await fresh.close();
    }
  });

  it('qks status shows the same numbers in the terminal', () => {
    const run = spawnSync(process.execPath, [BIN, 'status', '--once', '--manifest', manifestFile], {
      encoding: 'utf8',
    });
    assert.equal(run.status, 0, run.stderr);
    assert.match(run.stdout, /2\/2 KMEs answering/);
    assert.match(
      run.stdout,
      /link-a-b\s+kme-a - kme-b\s+(starting|healthy|degraded)\s+[\d.]+ (Mb|kb)\/s\s+\d+\.\d+%\s+kme-a [\d,]+ /,
    );
    assert.match(run.stdout, /kme-a\s+up\s+[\d,]+\s+0\s+0\s+kme-b [\d.]+ ms, 0 failed/);
    assert.match(run.stdout, /RECENT DELIVERIES/);
    assert.match(run.stdout, /INTEGRATIONS\nsae-a1@kme-a\s+tunnel/);
    const fp = emptyFingerprints();
    for (const k of received) fingerprint(Buffer.from(k, 'base64'), fp);
    assert.deepEqual(findLeaks(run.stdout, fp), []);

    const exposed = spawnSync(
      process.execPath,
      [BIN, 'dashboard', '--manifest', manifestFile, '--listen', '0.0.0.0:0'],
      {
        encoding: 'utf8',
      },
    );
    assert.equal(exposed.status, 2);
    assert.match(exposed.stderr, /loopback only/);
  });
});
