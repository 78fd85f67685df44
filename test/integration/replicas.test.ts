import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { KeyLedger, type WireKey } from '../helpers/key-ledger.js';
import { postgresSkip, startPostgres, type PgServer } from '../helpers/postgres.js';
import { ReplicaLab } from '../helpers/replica-lab.js';
import type { TestClient } from '../helpers/sae-client.js';
import { eventually } from '../helpers/two-kmes.js';
import { trafficDuring } from '../helpers/replica-traffic.js';

// Two `qks kme` replicas per site on one PostgreSQL database per KME, each site behind a real
// HAProxy: any replica serves any request, and work with one owner moves when its owner dies.

const LEASE_MS = 1000;

/** A master's keys for its slave, asked again while the KMEs start; null when never answered. */
async function encKeys(master: TestClient, slave: string, number = 2): Promise<WireKey[] | null> {
  for (let i = 0; i < 50; i++) {
    const res = await master.get(`/api/v1/keys/${slave}/enc_keys?number=${number}`).catch(() => null);
    if (res?.status === 200) return (res.body as { keys: WireKey[] }).keys;
    await sleep(100);
  }
  return null;
}

const decKeys = (slave: TestClient, master: string, ids: readonly string[]) =>
  slave.post(`/api/v1/keys/${master}/dec_keys`, { key_IDs: ids.map((key_ID) => ({ key_ID })) });

describe('KME replicas behind HAProxy on PostgreSQL', postgresSkip(), () => {
  let pg: PgServer;
  const lab = new ReplicaLab();
  const ledger = new KeyLedger();
  let linkId: string;
  const db = (kme: string) => new URL(lab.urls.get(kme)!).pathname.slice(1);
  const leaseHolder = async (kme: string, work: string) =>
    (
      await pg.sql<{ holder: string }>(
        `SELECT holder FROM leases WHERE name = '${kme}/${work}' AND expires > clock_timestamp()`,
        db(kme),
      )
    )[0]?.holder.split(':')[0];

  before(async () => {
    pg = await startPostgres();
    await lab.start({ postgres: pg, leaseMs: LEASE_MS, rateBps: 200_000 });
    linkId = lab.deployment.configs[0]!.config.links[0]!.id;
  });
  after(async () => {
    await lab.stop();
    await pg?.stop();
  });

  it('serves a slave from any replica, whichever replica its master used', async () => {
    for (const masterAt of lab.processNames('kme-a')) {
      for (const slaveAt of lab.processNames('kme-b')) {
        const keys = await encKeys(lab.client('sae-a1', masterAt), 'sae-b1');
        assert.ok(keys, `${masterAt} answers the master`);
        const delivery = ledger.master({ master: 'sae-a1', slave: 'sae-b1' }, keys);
        const res = await decKeys(lab.client('sae-b1', slaveAt), 'sae-a1', delivery.keyIds);
        assert.equal(res.status, 200, `${slaveAt} answers the slave: ${res.text}`);
        ledger.slave('sae-b1', 'sae-a1', (res.body as { keys: WireKey[] }).keys);
        // Asked again at the other replica, the key is gone: delivered once across replicas.
        const other = lab.processNames('kme-b').find((p) => p !== slaveAt)!;
        const again = await decKeys(lab.client('sae-b1', other), 'sae-a1', delivery.keyIds);
        assert.notEqual(again.status, 200, `${other} must not deliver the key again`);
      }
    }
    // And through each site's HAProxy, the way SAEs are configured.
    const master = lab.client('sae-b2');
    const slave = lab.client('sae-a2');
    for (let i = 0; i < 6; i++) {
      const keys = await encKeys(master, 'sae-a2');
      assert.ok(keys);
      const d = ledger.master({ master: 'sae-b2', slave: 'sae-a2' }, keys);
      const res = await decKeys(slave, 'sae-b2', d.keyIds);
      assert.equal(res.status, 200, res.text);
      ledger.slave('sae-a2', 'sae-b2', (res.body as { keys: WireKey[] }).keys);
    }
    assert.deepEqual(ledger.problems, []);
  });

  it('ingests each link at one replica per site; when it dies, another takes over within seconds, skipping no block', async () => {
    for (const kme of ['kme-a', 'kme-b']) {
      const owner = await leaseHolder(kme, `link:${linkId}`);
      assert.ok(owner && ['r1', 'r2'].includes(owner), `${kme}'s link has an owner (${owner})`);
      assert.ok(await leaseHolder(kme, 'outbox'), `${kme}'s outbox has an owner`);
    }
    const owner = (await leaseHolder('kme-a', `link:${linkId}`))!;
    const lastSeq = async () =>
      Number((await pg.sql<{ last_seq: number }>('SELECT last_seq FROM links', db('kme-a')))[0]!.last_seq);
    const before = await lastSeq();
    const killedAt = Date.now();
    await lab.procs.kill(`kme-a-${owner}`);
    await eventually(
      async () => ((await leaseHolder('kme-a', `link:${linkId}`)) ?? owner) !== owner,
      10_000,
      'the other replica takes the link over',
    );
    const tookMs = Date.now() - killedAt;
    assert.ok(tookMs < 3 * LEASE_MS + 2000, `taken over in ${tookMs} ms`);
    await eventually(async () => (await lastSeq()) > before + 20, 10_000, 'blocks flow again');
    const after = await lastSeq();
    // No keys were asked for meanwhile, and the pools are far from full: every number between is here.
    const seqs = (
      await pg.sql<{ seq: number }>(
        `SELECT seq FROM blocks WHERE link = '${linkId}' AND seq > ${before} AND seq <= ${after} ORDER BY seq`,
        db('kme-a'),
      )
    ).map((r) => Number(r.seq));
    assert.equal(seqs.length, after - before, `blocks ${before + 1}..${after} all ingested once`);
    await lab.procs.start(`kme-a-${owner}`);
    const keys = await encKeys(lab.client('sae-a1'), 'sae-b1');
    assert.ok(keys, 'keys still flow with the replica back');
  });

  it('keeps every key once when replicas are killed with SIGKILL under traffic', async () => {
    const pairs = [
      { master: 'sae-a1', slave: 'sae-b1' },
      { master: 'sae-b1', slave: 'sae-a2' },
    ];
    const victims = lab.processNames();
    const { answered, unfetched } = await trafficDuring(lab, pairs, ledger, async () => {
      for (let round = 0; round < 4; round++) {
        await sleep(1500);
        const victim = victims[Math.floor(Math.random() * victims.length)]!;
        await lab.procs.kill(victim);
        await sleep(700);
        await lab.procs.start(victim);
      }
      await sleep(1000);
    });
    assert.deepEqual(unfetched, [], 'every key a master received reached its slave');
    assert.deepEqual(ledger.problems, []);
    assert.ok(answered >= 8, `masters got keys throughout (${answered} answers)`);
  });
});
