import assert from 'node:assert/strict';
import { rmSync } from 'node:fs';
import { after, before, describe, it } from 'node:test';
import type { Deployment } from '../../src/cli/init.js';
import { KeyLedger, type Pair } from '../helpers/key-ledger.js';
import { askKeys, fetchKeys, keysOf } from '../helpers/key-traffic.js';
import { KmeProcesses } from '../helpers/kme-process.js';
import { archiveAndCheckLogs } from '../helpers/log-leaks.js';
import { shown } from '../helpers/redact.js';
import { TestClient } from '../helpers/sae-client.js';
import { StorePeek } from '../helpers/store-peek.js';
import { createDeployment, eventually } from '../helpers/two-kmes.js';

const CROSS: Pair = { master: 'sae-a1', slave: 'sae-b1' };

/**
 * kme-b hangs (SIGSTOP) with kme-a's stream to it open: a reservation written to it gets no
 * answer. That one may have reached kme-b, so its material is burned; the requests after it must
 * cost nothing until kme-b answers again.
 */
describe('a peer KME that hangs', () => {
  let deployment: Deployment;
  let procs: KmeProcesses;
  let peekA: StorePeek;
  let peekB: StorePeek;
  const ledger = new KeyLedger();
  const clients = new Map<string, TestClient>();
  const client = (sae: string) => {
    let c = clients.get(sae);
    if (!c) {
      const creds = deployment.saes.find((s) => s.id === sae)!;
      const { config } = deployment.configs.find((x) => x.kme === creds.kme)!;
      c = new TestClient(`https://127.0.0.1:${config.sae_api.port}`, { ca: deployment.ca, ...creds });
      clients.set(sae, c);
    }
    return c;
  };
  const dataDir = (kme: string) => deployment.configs.find((c) => c.kme === kme)!.config.data_dir;

  async function crossDelivered(): Promise<void> {
    const res = await askKeys(client(CROSS.master), CROSS, 2, 256, false);
    assert.equal(res.status, 200, shown(res));
    const d = ledger.master(CROSS, keysOf(res));
    const got = await fetchKeys(client(CROSS.slave), CROSS.master, d.keyIds, false);
    assert.ok(got.ok, got.ok ? '' : shown(got.res));
    ledger.slave(CROSS.slave, CROSS.master, got.keys);
  }

  before(async () => {
    deployment = await createDeployment({ rateBps: 1_000_000 });
    procs = new KmeProcesses(deployment);
    await Promise.all(['kme-a', 'kme-b'].map((k) => procs.start(k)));
    peekA = new StorePeek(dataDir('kme-a'));
    peekB = new StorePeek(dataDir('kme-b'));
    await eventually(
      async () => {
        const s = await client('sae-a1').get('/api/v1/keys/sae-b1/status');
        return (s.body as { stored_key_count: number }).stored_key_count >= 10_000;
      },
      30_000,
      'key material',
    );
  });
  after(async () => {
    procs?.signal('kme-b', 'SIGCONT');
    await procs?.killAll();
    peekA?.close();
    peekB?.close();
    await Promise.all([...clients.values()].map((c) => c.close()));
    if (deployment) archiveAndCheckLogs(deployment.dir);
    if (deployment) rmSync(deployment.dir, { recursive: true, force: true });
  });

  it('burns what may have reached the hung peer, and nothing after it', async () => {
    await crossDelivered(); // the stream from kme-a to kme-b is open now
    assert.equal(peekA.outboxRows(), 0);
    procs.signal('kme-b', 'SIGSTOP');
    for (let i = 0; i < 6; i++) {
      const res = await client('sae-a1').post('/api/v1/keys/sae-b1/enc_keys', { number: 128, size: 8192 });
      assert.equal(res.status, 503, shown(res));
      assert.match((res.body as { message: string }).message, /peer KME kme-b/);
    }
    assert.equal(peekA.reservedKeys(), 0);
    assert.equal(peekA.outboxRows(), 1, 'only the reservation written to the hung peer is burned');
  });

  it('cancels that reservation at the peer once it wakes, and serves again', async () => {
    procs.signal('kme-b', 'SIGCONT');
    await eventually(() => peekA.outboxRows() === 0, 30_000, 'the cancel to reach kme-b');
    assert.equal(peekB.readyKeys(), 0, 'whatever kme-b recorded of the burned keys is gone');
    // The outbox's answer showed kme-b back: cross-site keys are served at once.
    await crossDelivered();
    assert.deepEqual(ledger.problems, []);
  });
});
