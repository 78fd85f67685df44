import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { Deployment } from '../../src/cli/init.js';
import { KmeProcesses } from '../helpers/kme-process.js';
import { TestClient } from '../helpers/sae-client.js';
import { createDeployment, eventually } from '../helpers/two-kmes.js';
import { shown } from '../helpers/redact.js';

const BIN = join(process.cwd(), 'bin', 'qks.js');

/**
 * `qks pki revoke --kme kme-b` while the KMEs (real processes) hold their peer streams open: both
 * must stop taking reservations from each other, on the open streams and on new ones after
 * kme-b restarts with its revoked certificate.
 */
describe('a revoked peer KME is cut off', () => {
  let deployment: Deployment;
  let kmes: KmeProcesses;
  const clients: TestClient[] = [];
  /** A fresh client of `sae` at its own KME. */
  const saeClient = (sae: string) => {
    const s = deployment.saes.find((x) => x.id === sae)!;
    const port = deployment.configs.find((c) => c.kme === s.kme)!.config.sae_api.port;
    const c = new TestClient(`https://127.0.0.1:${port}`, { ca: deployment.ca, cert: s.cert, key: s.key });
    clients.push(c);
    return c;
  };
  let a1: TestClient;
  let b1: TestClient;
  /** enc_keys across the sites: kme-a reserves at kme-b (`a-to-b`), or kme-b at kme-a. */
  const ask = async (way: 'a-to-b' | 'b-to-a') => {
    const res =
      way === 'a-to-b'
        ? await a1.post('/api/v1/keys/sae-b1/enc_keys', { number: 1 })
        : await b1.post('/api/v1/keys/sae-a1/enc_keys', { number: 1 });
    assert.ok(res.status === 200 || res.status === 503, shown(res));
    return res.status;
  };

  before(async () => {
    deployment = await createDeployment({ rateBps: 1_000_000 });
    kmes = new KmeProcesses(deployment);
    await Promise.all([kmes.start('kme-a'), kmes.start('kme-b')]);
    a1 = saeClient('sae-a1');
    b1 = saeClient('sae-b1');
    await eventually(
      async () =>
        ((await a1.get('/api/v1/keys/sae-b1/status')).body as { stored_key_count?: number }).stored_key_count! > 50,
      20_000,
      'key material',
    );
  });
  after(async () => {
    await Promise.all(clients.map((c) => c.close()));
    await kmes?.killAll();
    if (deployment) rmSync(deployment.dir, { recursive: true, force: true });
  });

  it('in both directions, on open streams and after the revoked KME restarts', async (t) => {
    // Both streams are open and carry reservations.
    assert.equal(await ask('a-to-b'), 200);
    assert.equal(await ask('b-to-a'), 200);

    const run = spawnSync(process.execPath, [BIN, 'pki', 'revoke', '--dir', deployment.dir, '--kme', 'kme-b'], {
      encoding: 'utf8',
    });
    assert.equal(run.status, 0, run.stderr);
    const revokedAt = Date.now();
    // Polled, not timed: the KMEs reload the list within about a second.
    await eventually(async () => (await ask('a-to-b')) === 503, 15_000, 'kme-a to refuse to reserve at kme-b');
    await eventually(async () => (await ask('b-to-a')) === 503, 15_000, 'kme-a to refuse kme-b’s reservations');
    t.diagnostic(`both directions refused ${Date.now() - revokedAt} ms after qks pki revoke returned`);
    // And it stays so: no stream is opened again to or from the revoked KME.
    for (let i = 0; i < 5; i++) {
      assert.equal(await ask('a-to-b'), 503, 'kme-a reserved at the revoked kme-b');
      assert.equal(await ask('b-to-a'), 503, 'kme-a accepted a reservation of the revoked kme-b');
    }

    // kme-b restarts with its revoked certificate; kme-a, still running, connects anew.
    await kmes.kill('kme-b');
    await kmes.start('kme-b');
    for (let i = 0; i < 5; i++) {
      assert.equal(await ask('a-to-b'), 503, 'kme-a reserved at the restarted, revoked kme-b');
      assert.equal(await ask('b-to-a'), 503, 'the restarted, revoked kme-b reserved at kme-a');
    }
    // kme-a itself is fine: its local SAEs still get keys.
    const local = await a1.post('/api/v1/keys/sae-a2/enc_keys', { number: 1 });
    assert.equal(local.status, 200, shown(local));
  });
});
