import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { buildNetwork } from '../../src/dashboard/network.js';
import { renderStatus } from '../../src/dashboard/status-view.js';
import type { KmeOverview } from '../../src/kme/observability/overview.js';
import { CertificateAuthority } from '../../src/pki/authority.js';
import { readCrl } from '../../src/pki/crl.js';
import { operatorAt, parseMetrics } from '../helpers/operator.js';
import { shown } from '../helpers/redact.js';
import { TestClient } from '../helpers/sae-client.js';
import { eventually, startSites, type TwoSites } from '../helpers/two-kmes.js';

/**
 * Revocation lists valid for seconds instead of a year, so that the KMEs run across their expiry:
 * an expired list makes every handshake checked against it fail.
 */
const LIFETIME_S = 8;

const pkiOf = (sites: TwoSites) => join(sites.deployment.dir, 'pki');
const crlFiles = (sites: TwoSites) => ['sae-ca', 'kme-ca'].map((ca) => join(pkiOf(sites), `${ca}.crl.pem`));
const nextUpdate = (file: string) => readCrl(file).nextUpdate!.getTime();
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** enc_keys across the sites on a new TLS connection (a new handshake, checked against the list). */
async function crossSite(sites: TwoSites, master: string, slave: string): Promise<number> {
  const sae = sites.deployment.saes.find((s) => s.id === master)!;
  const port = sites.deployment.configs.find((c) => c.kme === sae.kme)!.config.sae_api.port;
  const client = new TestClient(`https://127.0.0.1:${port}`, { ca: sites.deployment.ca, cert: sae.cert, key: sae.key });
  try {
    const res = await client.post(`/api/v1/keys/${slave}/enc_keys`, { number: 1 });
    assert.ok(res.status === 200 || res.status === 401, shown(res));
    return res.status;
  } finally {
    await client.close();
  }
}

describe('revocation lists are renewed before they expire', () => {
  let sites: TwoSites;
  before(async () => {
    sites = await startSites({
      crlLifetimeSeconds: LIFETIME_S,
      crl: { check_interval_seconds: 1, warn_before_seconds: 1 },
    });
  });
  after(() => sites?.stop());

  it('keeps the KMEs working across the first lists’ expiry, revocations kept', async (t) => {
    const first = crlFiles(sites).map(nextUpdate);
    // A revocation made before the renewals must survive them.
    await CertificateAuthority.open(pkiOf(sites), 'sae-ca').revoke({ entity: 'urn:qks:sae:sae-a2' });
    const statuses: number[] = [];
    // Well past the first lists' nextUpdate: without renewal, every new handshake fails by then.
    while (Date.now() < Math.max(...first) + 3000) {
      statuses.push(await crossSite(sites, 'sae-a1', 'sae-b1'));
      await sleep(500);
    }
    t.diagnostic(`${statuses.length} new connections across ${LIFETIME_S} s lists`);
    assert.deepEqual(
      statuses.filter((s) => s !== 200),
      [],
      'every new SAE connection served',
    );
    const now = crlFiles(sites).map(nextUpdate);
    for (const [i, next] of now.entries()) assert.ok(next > first[i]! + 1000, 'the list was issued again');
    // New KME-to-KME handshakes too: kme-b restarts, both KMEs open their streams anew.
    await sites.stopKme('kme-b');
    await sites.startKme('kme-b');
    assert.equal(await crossSite(sites, 'sae-a1', 'sae-b1'), 200);
    assert.equal(await crossSite(sites, 'sae-b1', 'sae-a1'), 200);
    assert.equal(await crossSite(sites, 'sae-a2', 'sae-b1'), 401, 'the revoked SAE is still refused');
    // One KME or the other renewed each list (they share the CA here); each renewal was logged.
    const logs = ['kme-a', 'kme-b'].map((k) => readFileSync(join(sites.deployment.dir, `${k}.log`), 'utf8')).join('');
    assert.ok(logs.includes('"msg":"revocation list renewed"'), 'the renewal in the log');
  });
});

describe('with renewal off, the KME warns before its lists expire', () => {
  let sites: TwoSites;
  let op: TestClient;
  before(async () => {
    sites = await startSites({
      operator: 'operator',
      crlLifetimeSeconds: 20,
      crl: { renew: false, check_interval_seconds: 1, warn_before_seconds: 15 },
    });
    op = operatorAt(sites, 'kme-a');
  });
  after(async () => {
    await op?.close();
    await sites?.stop();
  });

  it('in the overview, the dashboard, the metrics and the log; then handshakes fail', async () => {
    const [saeList] = crlFiles(sites);
    const expires = nextUpdate(saeList!);
    let overview: KmeOverview | undefined;
    await eventually(
      async () => {
        overview = (await op.get('/api/v1/admin/overview')).body as KmeOverview;
        return overview.crls?.every((c) => c.state === 'expiring') ?? false;
      },
      15_000,
      'both lists shown expiring',
    );
    assert.ok(Date.now() < expires, 'warned before the list expired');
    assert.deepEqual(overview!.crls!.map((c) => [c.api, c.renew]).sort(), [
      ['kme_api', false],
      ['sae_api', false],
    ]);
    const left = parseMetrics((await op.get('/metrics')).text).get('qks_crl_next_update_seconds{api="sae_api"}');
    assert.ok(left !== undefined && left > 0 && left <= 15, `seconds left in the metrics: ${left}`);
    // The dashboard and qks status show it for that KME.
    const view = buildNetwork([{ KME_ID: 'kme-a', reachable: true, overview: overview! }], Date.now());
    const warnings = view.nodes.find((n) => n.id === 'kme-a')!.warnings!;
    assert.equal(warnings.length, 2);
    assert.match(warnings.join('\n'), /sae_api revocation list expires in \d+ s .*renewal is off/);
    assert.match(renderStatus(view), /WARNINGS\n {2}kme-a: sae_api revocation list expires/);
    await eventually(
      () => /revocation list expires soon/.test(readFileSync(join(sites.deployment.dir, 'kme-a.log'), 'utf8')),
      5000,
      'the warning in the log',
    );

    // What the warning was about: once the list has expired, a new SAE connection is refused.
    while (Date.now() < expires + 500) await sleep(250);
    assert.equal(await crossSite(sites, 'sae-a1', 'sae-b1'), 401);
    await eventually(
      () => /revocation list expired/.test(readFileSync(join(sites.deployment.dir, 'kme-a.log'), 'utf8')),
      5000,
      'the expiry in the log',
    );
  });
});

describe('qks pki renew-crl', () => {
  const dir = mkdtempSync(join(tmpdir(), 'qks-renew-'));
  after(() => rmSync(dir, { recursive: true, force: true }));
  const BIN = join(process.cwd(), 'bin', 'qks.js');
  const qks = (...args: string[]) =>
    spawnSync(process.execPath, [BIN, 'pki', ...args, '--dir', dir], { encoding: 'utf8' });
  const ok = (...args: string[]) => {
    const run = qks(...args);
    assert.equal(run.status, 0, run.stderr);
    return JSON.parse(run.stdout) as Record<
      string,
      { renewed: boolean; next_update: string; lifetime_seconds: number }
    >;
  };
  const crl = (ca: string) => readCrl(join(dir, 'pki', `${ca}.crl.pem`));

  it('issues the lists again with their lifetime or a new one, revocations kept, never losing one to a race', async () => {
    ok('create-ca');
    const issued = JSON.parse(qks('issue', '--sae', 'sae-x1').stdout) as { serial: string };
    const started = Date.now();
    const renewed = ok('renew-crl', '--seconds', '3600');
    assert.deepEqual(Object.keys(renewed).sort(), ['kme-ca', 'sae-ca']);
    for (const r of Object.values(renewed)) {
      assert.equal(r.renewed, true);
      assert.equal(r.lifetime_seconds, 3600);
      assert.ok(Math.abs(Date.parse(r.next_update) - started - 3_600_000) < 60_000, r.next_update);
    }
    // Not due: more than half of the hour is left.
    assert.equal(ok('renew-crl', '--if-due')['sae-ca']!.renewed, false);
    // Revocations and renewals from several processes at once: the list ends naming the revoked one.
    const runs = ['renew-crl', 'renew-crl', 'revoke'].map(
      (cmd) =>
        new Promise<number | null>((resolve) =>
          spawn(
            process.execPath,
            [BIN, 'pki', cmd, '--dir', dir, ...(cmd === 'revoke' ? ['--sae', 'sae-x1'] : ['--ca', 'sae'])],
            { stdio: 'ignore' },
          ).once('exit', resolve),
        ),
    );
    assert.deepEqual(await Promise.all(runs), [0, 0, 0]);
    assert.ok(crl('sae-ca').revoked.has(issued.serial.toLowerCase().replace(/^0+/, '')), 'the revocation was kept');
    // A lock left by a process killed while holding it (older than 30 s) does not block for good.
    const lock = join(dir, 'pki', 'sae-ca.lock');
    writeFileSync(lock, '');
    utimesSync(lock, new Date(Date.now() - 60_000), new Date(Date.now() - 60_000));
    const kept = ok('renew-crl', '--ca', 'sae', '--days', '2')['sae-ca']!;
    assert.ok(!existsSync(lock), 'the lock was taken over and released');
    assert.equal(kept.lifetime_seconds, 2 * 86_400);
    assert.ok(crl('sae-ca').revoked.has(issued.serial.toLowerCase().replace(/^0+/, '')), 'renewal keeps it');
    assert.equal(qks('renew-crl', '--ca', 'x').status, 2);
    assert.match(qks('renew-crl', '--days', '0').stderr, /--days must be a positive integer/);
    assert.match(spawnSync(process.execPath, [BIN, 'pki', 'help'], { encoding: 'utf8' }).stdout, /renew-crl/);
  });
});
