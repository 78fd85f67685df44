import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { freePorts } from '../../src/cli/ports.js';
import { NetworkCollector } from '../../src/dashboard/collector.js';
import { CertificateAuthority } from '../../src/pki/authority.js';
import { operatorAt } from '../helpers/operator.js';
import { eventually, startSites, type TwoSites } from '../helpers/two-kmes.js';

const BIN = fileURLToPath(new URL('../../../bin/qks.js', import.meta.url));
const REFUSED_ERROR = "HTTP 401: not an administrator there (check access.operators, revocation, the token's scope)";

/** `qks status --once`, run as a user would, while this process serves the KMEs (so: not spawnSync). */
function status(manifest: string, ...more: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [BIN, 'status', '--once', '--manifest', manifest, ...more]);
    let [stdout, stderr] = ['', ''];
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.once('error', reject);
    child.once('close', (code) => resolve({ code, stdout, stderr }));
  });
}

/**
 * A KME that answers 401 to the operator is not "unreachable": it answered, and refused the
 * credentials. Two real KMEs, kme-b without the operator in its access.operators, and a URL where
 * nothing listens; then the operator's certificate revoked.
 */
describe('a KME that refuses our credentials', () => {
  let sites: TwoSites;
  let deadUrl: string;
  const manifest = (name: string, kmes: string[]) => {
    const d = sites.deployment;
    const urls = Object.fromEntries(
      d.configs.map((c) => [c.kme, `https://127.0.0.1:${c.config.sae_api.port}`] as [string, string]),
    );
    const file = join(d.dir, name);
    writeFileSync(
      file,
      JSON.stringify({
        ca: d.ca,
        kmes: kmes.map((k) => ({ id: k, url: urls[k] ?? deadUrl })),
        saes: [],
        operator: d.operator,
      }),
    );
    return file;
  };

  before(async () => {
    sites = await startSites({
      operator: 'operator',
      configure: (c) => {
        if (c.kme_id === 'kme-b') c.access.operators = [];
      },
    });
    deadUrl = `https://127.0.0.1:${(await freePorts(1))[0]}`;
  });
  after(() => sites.stop());

  it('qks status --once shows it as "refused our credentials", apart from one that does not answer; exit 1', async () => {
    const run = await status(manifest('three.json', ['kme-a', 'kme-b', 'dead']));
    assert.equal(run.code, 1, run.stderr);
    const lines = run.stdout.split('\n');
    assert.match(lines[0]!, /^QKS network at \d\d:\d\d:\d\d UTC: 1\/3 KMEs answering \(1 refused our credentials\)$/);
    const row = (id: string) => lines.find((l) => l.startsWith(`${id} `))!;
    assert.match(row('kme-a'), /^kme-a\s+up\s/);
    assert.match(
      row('kme-b'),
      new RegExp(`^kme-b\\s+refused our credentials\\s+-\\s+-\\s+-\\s+${escape(REFUSED_ERROR)}$`),
    );
    assert.match(row('dead'), /^dead\s+unreachable\s+-\s+-\s+-\s+.*ECONNREFUSED/);
    // kme-b is up behind its refusal: its link is not called down for it, only its end is missing.
    assert.match(
      lines.find((l) => l.startsWith('link-a-b '))!,
      /^link-a-b\s+kme-a - kme-b\s+(starting|healthy)\s/,
    );
    assert.match(
      lines.find((l) => l.startsWith('  link-a-b: '))!,
      /kme-b refused our credentials: its end not shown$/,
    );
  });

  it('exits 0 when every KME it watches gives its overview', async () => {
    const run = await status(manifest('one.json', ['kme-a']));
    assert.equal(run.code, 0, run.stderr);
    assert.match(run.stdout, /^QKS network at \d\d:\d\d:\d\d UTC: 1\/2 KMEs answering\n/);
    assert.match(run.stdout, /\nkme-b\s+unwatched\s/);
  });

  it("--cert and --key with --manifest are used instead of the manifest's operator", async () => {
    const sae = sites.deployment.saes.find((s) => s.kme === 'kme-a')!;
    const run = await status(manifest('sae-as-operator.json', ['kme-a']), '--cert', sae.cert, '--key', sae.key);
    assert.equal(run.code, 1, run.stderr);
    assert.match(run.stdout, /\nkme-a\s+refused our credentials\s/, 'an SAE is no operator');
  });

  it('the dashboard’s view and page say the same; a revoked operator is refused too', async () => {
    const op = sites.deployment.operator!;
    const collector = new NetworkCollector({
      urls: sites.deployment.configs.map((c) => `https://127.0.0.1:${c.config.sae_api.port}`),
      ids: sites.deployment.configs.map((c) => c.kme),
      client: { ca: sites.deployment.ca, cert: op.cert, key: op.key },
    });
    try {
      let view = await collector.view();
      assert.deepEqual(
        view.nodes.map((n) => [n.id, n.status, n.error]),
        [
          ['kme-a', 'up', undefined],
          ['kme-b', 'refused', REFUSED_ERROR],
        ],
      );
      // The browser's own script, from the source tree.
      const script = new URL('../../../src/dashboard/public/app.js', import.meta.url).href;
      const { nodeStatusText } = (await import(script)) as { nodeStatusText: (s: string) => string };
      assert.equal(nodeStatusText(view.nodes[1]!.status), 'refused our credentials');

      await CertificateAuthority.open(join(sites.deployment.dir, 'pki'), 'sae-ca').revoke({
        entity: 'urn:qks:sae:operator',
      });
      const opA = operatorAt(sites, 'kme-a');
      // A handshake that began before the reload is closed once it completes (ECONNRESET), not answered.
      const refused = async () => (await opA.get('/api/v1/admin/overview')).status === 401;
      await eventually(() => refused().catch(() => false), 15_000, 'the revocation');
      await opA.close();
      await new Promise((r) => setTimeout(r, 1000));
      view = await collector.view();
      assert.deepEqual(
        view.nodes.map((n) => [n.id, n.status]),
        [
          ['kme-a', 'refused'],
          ['kme-b', 'refused'],
        ],
      );
    } finally {
      await collector.close();
    }
    const run = await status(manifest('revoked.json', ['kme-a']));
    assert.equal(run.code, 1);
    assert.match(run.stdout, /\nkme-a\s+refused our credentials\s/);
  });
});

const escape = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
