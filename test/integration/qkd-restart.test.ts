import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { KeyLedger } from '../helpers/key-ledger.js';
import { fetchKeys, keysOf } from '../helpers/key-traffic.js';
import { KmeLab } from '../helpers/kme-lab.js';
import { shown } from '../helpers/redact.js';

/** Small frames make key only with ideal detectors (test/qkd/physics.test.ts has the real ones). */
const SMALL_FRAMES = { distance_km: 5, frame_pulses: 5_000_000, dead_time_us: 0, afterpulse_probability: 0 };

const KMES = ['kme-a', 'kme-b'] as const;
const PAIR = { master: 'sae-a1', slave: 'sae-b1' } as const;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * Two KMEs joined by the QKD link simulator, drained of keys, restarted (SIGKILL, then SIGTERM) and
 * drained again: every key's bytes are compared with every other's (KeyLedger: no 8-byte piece
 * twice) and the slave's with the master's. The link's frame numbers restart at 0 each time.
 */
describe('KMEs on the QKD link simulator, restarted', () => {
  const lab = new KmeLab();
  const client = (sae: string) => lab.client(sae);
  const ledger = new KeyLedger();

  /** Takes every key the link makes until it has run `frames` frames since the KMEs started. */
  async function drain(frames: number): Promise<number> {
    const master = client(PAIR.master);
    const deadline = Date.now() + 120_000;
    let taken = 0;
    for (;;) {
      if (Date.now() > deadline) throw new Error(`the link made too little (${taken} keys taken)`);
      const status = await master.get(`/api/v1/keys/${PAIR.slave}/status`);
      const stored = (status.body as { stored_key_count: number }).stored_key_count;
      const info = await master.get('/api/v1/information/info');
      const done = (info.body as { key_sources: Array<{ stats?: { framesDone: number } }> }).key_sources[0]!.stats!;
      if (stored === 0) {
        if (done.framesDone >= frames && taken > 0) return taken;
        await sleep(200);
        continue;
      }
      const got = await master.get(`/api/v1/keys/${PAIR.slave}/enc_keys?number=${Math.min(stored, 128)}&size=256`);
      assert.equal(got.status, 200, shown(got));
      const delivery = ledger.master(PAIR, keysOf(got));
      const fetched = await fetchKeys(client(PAIR.slave), PAIR.master, delivery.keyIds, false);
      assert.ok(fetched.ok, 'the slave gets the keys');
      if (fetched.ok) ledger.slave(PAIR.slave, PAIR.master, fetched.keys);
      taken += delivery.keyIds.length;
    }
  }

  before(() => lab.start({ source: 'qkd', qkd: SMALL_FRAMES }));
  after(() => lab.stop());

  it('never delivers the same key material again after the KMEs restart or are killed', async () => {
    const taken = [await drain(3)];
    for (const stop of ['kill', 'terminate'] as const) {
      await Promise.all(KMES.map((k) => lab.procs[stop](k)));
      await Promise.all(KMES.map((k) => lab.procs.start(k)));
      taken.push(await drain(3));
    }
    assert.deepEqual(ledger.problems, []);
    assert.ok(
      taken.every((n) => n > 0),
      `keys taken in each run: ${taken.join(', ')}`,
    );
  });
});
