import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { KeyLedger, type Pair } from '../helpers/key-ledger.js';
import { askKeys, fetchKeys, keysOf } from '../helpers/key-traffic.js';
import { shown } from '../helpers/redact.js';
import { eventually, startSites, type TwoSites } from '../helpers/two-kmes.js';

const CROSS: Pair = { master: 'sae-a1', slave: 'sae-b1' };

/** Two sites whose link starts a moment from now, kme-b's end `lagMs` behind kme-a's. */
async function laggingSites(lagMs: number): Promise<TwoSites> {
  return startSites({ epochMs: Date.now() + 3000, linkLagMs: { 'kme-b': lagMs } });
}

const storedAt = async (sites: TwoSites, master: string, slave: string) =>
  ((await sites.sae(master).get(`/api/v1/keys/${slave}/status`)).body as { stored_key_count: number }).stored_key_count;

describe('a slave KME whose link end lags behind', () => {
  it('the reservation waits for blocks it has not received yet; the slave gets the same bytes', async () => {
    const sites = await laggingSites(1200);
    const ledger = new KeyLedger();
    try {
      await eventually(async () => (await storedAt(sites, 'sae-a1', 'sae-b1')) > 0, 10_000, 'kme-a’s first blocks');
      // kme-b's end has produced nothing yet: its own masters have no keys.
      assert.equal(await storedAt(sites, 'sae-b1', 'sae-a1'), 0, 'kme-b has not received these blocks');
      const started = Date.now();
      const res = await askKeys(sites.sae('sae-a1'), CROSS, 1, 256, false);
      const waited = Date.now() - started;
      assert.equal(res.status, 200, shown(res));
      assert.ok(waited >= 300, `kme-b waited ${waited} ms for the blocks before it accepted the reservation`);
      const delivery = ledger.master(CROSS, keysOf(res));
      const got = await fetchKeys(sites.sae('sae-b1'), 'sae-a1', delivery.keyIds, false);
      assert.ok(got.ok, got.ok ? '' : shown(got.res));
      ledger.slave('sae-b1', 'sae-a1', got.keys);
      assert.deepEqual(ledger.problems, [], 'the same bytes at both KMEs');
    } finally {
      await sites.stop();
    }
  });

  it('past the wait, the master gets 503 naming the cause; keys flow, unreused, once the end catches up', async () => {
    const sites = await laggingSites(5000);
    const ledger = new KeyLedger();
    try {
      await eventually(async () => (await storedAt(sites, 'sae-a1', 'sae-b1')) > 0, 10_000, 'kme-a’s first blocks');
      const refused = await askKeys(sites.sae('sae-a1'), CROSS, 2, 256, false);
      assert.equal(refused.status, 503, shown(refused));
      assert.match(
        (refused.body as { message: string }).message,
        /^peer KME kme-b could not record the keys: blocks not available here/,
      );
      // Once kme-b has caught up, keys flow, and none reuses material cut for the refused request.
      await eventually(async () => (await storedAt(sites, 'sae-b1', 'sae-a1')) > 0, 10_000, 'kme-b to catch up');
      for (let i = 0; i < 5; i++) {
        const res = await askKeys(sites.sae('sae-a1'), CROSS, 4, 256, false);
        assert.equal(res.status, 200, shown(res));
        const delivery = ledger.master(CROSS, keysOf(res));
        const got = await fetchKeys(sites.sae('sae-b1'), 'sae-a1', delivery.keyIds, false);
        assert.ok(got.ok, got.ok ? '' : shown(got.res));
        ledger.slave('sae-b1', 'sae-a1', got.keys);
      }
      assert.deepEqual(ledger.problems, []);
    } finally {
      await sites.stop();
    }
  });
});
