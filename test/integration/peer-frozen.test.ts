import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { KeyLedger, type Pair } from '../helpers/key-ledger.js';
import { askKeys, fetchKeys, keysOf } from '../helpers/key-traffic.js';
import { KmeLab } from '../helpers/kme-lab.js';
import { shown } from '../helpers/redact.js';
import { StorePeek } from '../helpers/store-peek.js';
import { eventually } from '../helpers/two-kmes.js';

const CROSS: Pair = { master: 'sae-a1', slave: 'sae-b1' };

/**
 * kme-b hangs (SIGSTOP) with kme-a's stream to it open: a reservation written to it gets no
 * answer. That one may have reached kme-b, so its material is burned; the requests after it must
 * cost nothing until kme-b answers again.
 */
describe('a peer KME that hangs', () => {
  const lab = new KmeLab();
  const client = (sae: string) => lab.client(sae);
  let peekA: StorePeek;
  let peekB: StorePeek;
  const ledger = new KeyLedger();

  async function crossDelivered(): Promise<void> {
    const res = await askKeys(client(CROSS.master), CROSS, 2, 256, false);
    assert.equal(res.status, 200, shown(res));
    const d = ledger.master(CROSS, keysOf(res));
    const got = await fetchKeys(client(CROSS.slave), CROSS.master, d.keyIds, false);
    assert.ok(got.ok, got.ok ? '' : shown(got.res));
    ledger.slave(CROSS.slave, CROSS.master, got.keys);
  }

  before(async () => {
    await lab.start({ rateBps: 1_000_000 });
    peekA = new StorePeek(lab.dataDir('kme-a'));
    peekB = new StorePeek(lab.dataDir('kme-b'));
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
    peekA?.close();
    peekB?.close();
    await lab.stop();
  });

  it('burns what may have reached the hung peer, and nothing after it', async () => {
    await crossDelivered(); // the stream from kme-a to kme-b is open now
    assert.equal(peekA.outboxRows(), 0);
    lab.procs.signal('kme-b', 'SIGSTOP');
    for (let i = 0; i < 6; i++) {
      const res = await client('sae-a1').post('/api/v1/keys/sae-b1/enc_keys', { number: 128, size: 8192 });
      assert.equal(res.status, 503, shown(res));
      assert.match((res.body as { message: string }).message, /peer KME kme-b/);
    }
    assert.equal(peekA.reservedKeys(), 0);
    assert.equal(peekA.outboxRows(), 1, 'only the reservation written to the hung peer is burned');
  });

  it('cancels that reservation at the peer once it wakes, and serves again', async () => {
    lab.procs.signal('kme-b', 'SIGCONT');
    await eventually(() => peekA.outboxRows() === 0, 30_000, 'the cancel to reach kme-b');
    assert.equal(peekB.readyKeys(), 0, 'whatever kme-b recorded of the burned keys is gone');
    // The outbox's answer showed kme-b back: cross-site keys are served at once.
    await crossDelivered();
    assert.deepEqual(ledger.problems, []);
  });
});
