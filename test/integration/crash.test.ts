import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { KeyLedger, type Delivery } from '../helpers/key-ledger.js';
import { askKeys, BOTH_WAYS, fetchKeys, keysOf, pick, runLoad, SIZES } from '../helpers/key-traffic.js';
import { KmeLab } from '../helpers/kme-lab.js';
import { StorePeek } from '../helpers/store-peek.js';
import { eventually } from '../helpers/two-kmes.js';
import { shown } from '../helpers/redact.js';

const KMES = ['kme-a', 'kme-b'] as const;
const KILLS = 6;
const NOT_FOUND = 'one or more keys specified are not found on KME';
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const between = (lo: number, hi: number) => lo + Math.random() * (hi - lo);

describe('KMEs killed with SIGKILL at random moments under load', () => {
  const lab = new KmeLab();
  const client = (sae: string) => lab.client(sae);
  const ledger = new KeyLedger();
  /** Slave fetches whose answer was lost to a crash: `${keyId} ${slave}`; the key may be gone. */
  const unsure = new Set<string>();
  const tally = { ok: 0, refused: 0, lost: 0, fetchedLive: 0 };

  before(async () => {
    // A small pool so that trimming old blocks runs during the test too.
    await lab.start({ rateBps: 1_000_000, capacityBlocks: 20_000 });
    await eventually(
      async () => {
        const s = await client('sae-b1').get('/api/v1/keys/sae-a1/status');
        return (s.body as { stored_key_count: number }).stored_key_count >= 1000;
      },
      15_000,
      'key material',
    );
  });
  after(() => lab.stop());

  /** One slave's fetch while KMEs may die: a lost answer leaves the key unsure, a refusal pending. */
  async function fetchDuringCrashes(d: Delivery, slave: string): Promise<void> {
    const useGet = Math.random() < 0.5;
    const batches = useGet ? d.keyIds.map((id) => [id]) : [d.keyIds];
    for (const ids of batches) {
      let got;
      try {
        got = await fetchKeys(client(slave), d.master, ids, useGet);
      } catch {
        for (const id of ids) unsure.add(`${id} ${slave}`);
        return;
      }
      if (got.ok) ledger.slave(slave, d.master, got.keys);
      else if (got.res.status !== 503) ledger.problems.push(`${slave}: ${shown(got.res)} while live`);
      if (!got.ok) return;
      tally.fetchedLive += ids.length;
    }
  }

  async function masterAsks(): Promise<void> {
    const pair = pick(BOTH_WAYS);
    let res;
    try {
      res = await askKeys(client(pair.master), pair, 1 + Math.floor(Math.random() * 4), pick(SIZES), false);
    } catch {
      tally.lost++; // connection reset by a kill: the master got nothing
      return;
    }
    if (res.status !== 200) {
      if (res.status !== 503) ledger.problems.push(`${pair.master}: ${shown(res)}`);
      tally.refused++;
      return;
    }
    tally.ok++;
    const d = ledger.master(pair, keysOf(res));
    if (Math.random() < 0.5) await Promise.all(d.slaves.map((s) => fetchDuringCrashes(d, s)));
  }

  /** Kills a random KME at random moments; sometimes again while it is starting up. */
  async function killer(): Promise<number> {
    let kills = 0;
    while (kills < KILLS) {
      await sleep(between(1200, 2800));
      const kme = pick(KMES);
      await lab.procs.kill(kme);
      kills++;
      if (kills < KILLS && Math.random() < 0.3) {
        lab.procs.spawn(kme);
        await sleep(between(0, 400));
        await lab.procs.kill(kme);
        kills++;
      }
      await sleep(between(0, 500));
      await lab.procs.start(kme);
    }
    return kills;
  }

  it('loses nothing a master received and delivers nothing twice', async (t) => {
    let stop = false;
    const load = runLoad({ workers: 6, maxOps: 10_000, maxMs: 45_000, stop: () => stop }, masterAsks);
    let kills: number;
    try {
      kills = await killer();
      await sleep(1000); // a last stretch with both KMEs up
    } finally {
      stop = true;
      await load;
    }
    await Promise.all(KMES.map((k) => lab.procs.waitUp(k)));
    t.diagnostic(`${kills} kills; masters: ${tally.ok} ok, ${tally.refused} refused, ${tally.lost} lost`);

    // Every slave now fetches what it has not got; only keys whose fetch was lost may be gone.
    let gone = 0;
    await runLoad({ workers: 6, maxOps: ledger.deliveries.length, maxMs: 30_000 }, async (i) => {
      const d = ledger.deliveries[i]!;
      for (const slave of d.slaves) {
        const pending = d.keyIds.filter((id) => ledger.pendingSlaves(id).includes(slave));
        const sure = pending.filter((id) => !unsure.has(`${id} ${slave}`));
        if (sure.length > 0) {
          const got = await fetchKeys(client(slave), d.master, sure, Math.random() < 0.3);
          if (got.ok) ledger.slave(slave, d.master, got.keys);
          else ledger.problems.push(`${slave} lost keys of ${d.master}: ${shown(got.res)}`);
        }
        for (const id of pending.filter((x) => unsure.has(`${x} ${slave}`))) {
          const got = await fetchKeys(client(slave), d.master, [id], true);
          if (got.ok) ledger.slave(slave, d.master, got.keys);
          else if (got.res.status === 400 && got.res.text.includes(NOT_FOUND)) gone++;
          else ledger.problems.push(`${slave}: ${shown(got.res)}`);
        }
        const again = await fetchKeys(client(slave), d.master, [pick(d.keyIds)], false);
        if (again.ok || again.res.status !== 400) ledger.problems.push(`${slave} got a key of ${d.master} twice`);
      }
    });
    t.diagnostic(
      `${ledger.keyCount} keys; ${tally.fetchedLive} fetched during kills; ${unsure.size} unsure, ${gone} of them gone`,
    );

    assert.deepEqual(ledger.problems, []);
    assert.equal(kills, KILLS);
    assert.ok(tally.ok >= 50, `only ${tally.ok} requests succeeded`);
    assert.ok(gone <= unsure.size);
    const left = ledger.deliveries.flatMap((d) =>
      d.keyIds.flatMap((id) => ledger.pendingSlaves(id).filter((s) => !unsure.has(`${id} ${s}`))),
    );
    assert.deepEqual(left, [], 'slave deliveries missing');

    // Cancels of burned keys reach the peer; no key is left half-made.
    const peeks = lab.deployment.configs.map((c) => new StorePeek(c.config.data_dir));
    try {
      await eventually(() => peeks.every((p) => p.outboxRows() === 0), 15_000, 'outboxes to drain');
      for (const p of peeks) assert.equal(p.reservedKeys(), 0);
      t.diagnostic(`keys left waiting (masters never got them): ${peeks.map((p) => p.readyKeys()).join(', ')}`);
    } finally {
      for (const p of peeks) p.close();
    }
  });
});
