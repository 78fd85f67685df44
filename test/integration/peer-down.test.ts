import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { KeyLedger, type Delivery, type Pair } from '../helpers/key-ledger.js';
import { askKeys, fetchKeys, keysOf, runLoad } from '../helpers/key-traffic.js';
import type { TestClient } from '../helpers/sae-client.js';
import { StorePeek } from '../helpers/store-peek.js';
import { eventually, startSites, type TwoSites } from '../helpers/two-kmes.js';
import { shown } from '../helpers/redact.js';

const CROSS: Pair = { master: 'sae-a1', slave: 'sae-b1' };
const MIXED: Pair = { master: 'sae-a2', slave: 'sae-b2', extra: ['sae-a1'] };
const LOCAL: Pair = { master: 'sae-a1', slave: 'sae-a2' };
const BACK: Pair = { master: 'sae-b2', slave: 'sae-a2' };

describe('the peer KME goes away and comes back', () => {
  let sites: TwoSites;
  let peekA: StorePeek;
  const ledger = new KeyLedger();
  const clients = new Map<string, TestClient>();
  const client = (sae: string) => clients.get(sae) ?? clients.set(sae, sites.sae(sae)).get(sae)!;

  /** Asks for keys; a 200 goes to the ledger, anything else is returned. */
  async function ask(pair: Pair, number: number, useGet = false) {
    const res = await askKeys(client(pair.master), pair, number, 512, useGet);
    return { res, delivery: res.status === 200 ? ledger.master(pair, keysOf(res)) : undefined };
  }

  async function fetchAll(d: Delivery): Promise<void> {
    for (const slave of d.slaves) {
      const got = await fetchKeys(client(slave), d.master, d.keyIds, false);
      assert.ok(got.ok, got.ok ? '' : `${slave}: ${shown(got.res)}`);
      ledger.slave(slave, d.master, got.keys);
    }
  }

  before(async () => {
    sites = await startSites({ rateBps: 1_000_000 });
    peekA = new StorePeek(sites.deployment.configs.find((c) => c.kme === 'kme-a')!.config.data_dir);
    await eventually(
      async () => {
        const s = await client('sae-b2').get('/api/v1/keys/sae-a2/status');
        return (s.body as { stored_key_count: number }).stored_key_count >= 200;
      },
      15_000,
      'key material',
    );
  });
  after(async () => {
    peekA?.close();
    await sites?.stop();
  });

  it('serves cross-site keys while both KMEs are up', async () => {
    const { res, delivery } = await ask(CROSS, 3);
    assert.equal(res.status, 200, shown(res));
    await fetchAll(delivery!);
  });

  it('keeps keys delivered while the peer shuts down there for the slave', async (t) => {
    // Requests race the shutdown: each is refused, or its keys were recorded at kme-b first.
    let stopped = false;
    const results: Array<Awaited<ReturnType<typeof ask>>> = [];
    const load = runLoad({ workers: 4, maxOps: 400, maxMs: 10_000, stop: () => stopped }, async () => {
      results.push(await ask(CROSS, 2));
    });
    await new Promise((r) => setTimeout(r, 150));
    await sites.stopKme('kme-b');
    await new Promise((r) => setTimeout(r, 100));
    stopped = true;
    await load;
    for (const { res } of results) assert.ok(res.status === 200 || res.status === 503, shown(res));
    const failed = results.filter((r) => r.res.status === 503).length;
    t.diagnostic(`${results.length - failed} delivered, ${failed} refused around the shutdown`);
    await sites.startKme('kme-b');
    for (const { delivery } of results) if (delivery) await fetchAll(delivery);
    assert.deepEqual(ledger.problems, []);
    await sites.stopKme('kme-b');
  });

  it('answers 503 naming the peer when the peer KME is down, and returns the material it cut', async () => {
    const queued = peekA.outboxRows();
    for (const [pair, useGet] of [
      [CROSS, false],
      [CROSS, true],
      [MIXED, false],
    ] as const) {
      const { res } = await ask(pair, 4, useGet);
      assert.equal(res.status, 503, shown(res));
      assert.match((res.body as { message: string }).message, /peer KME kme-b is unreachable/);
    }
    assert.equal(peekA.reservedKeys(), 0, 'keys cut for a refused request must not stay reserved');
    assert.equal(peekA.outboxRows(), queued, 'nothing to cancel: the reservations never left kme-a');
  });

  it('loses no key material to SAE retries while the peer is down', async () => {
    // 25 requests of 128 keys of 8192 bits would cut 102,400 blocks: more than the pool holds.
    const count = async () => {
      const s = await client('sae-a1').get('/api/v1/keys/sae-b1/status');
      return (s.body as { stored_key_count: number }).stored_key_count;
    };
    const queued = peekA.outboxRows();
    const before = await count();
    for (let i = 0; i < 25; i++) {
      const res = await client('sae-a1').post('/api/v1/keys/sae-b1/enc_keys', { number: 128, size: 8192 });
      assert.equal(res.status, 503, shown(res));
      assert.match((res.body as { message: string }).message, /peer KME kme-b is unreachable/);
    }
    // The link goes on filling the pool meanwhile; nothing may have been taken from it.
    assert.ok((await count()) >= before, 'the pool must not shrink');
    assert.equal(peekA.outboxRows(), queued, 'no material burned');
  });

  it('still serves local pairs while the peer is down', async () => {
    const { res, delivery } = await ask(LOCAL, 4);
    assert.equal(res.status, 200, shown(res));
    await fetchAll(delivery!);
    const again = await fetchKeys(client('sae-a2'), 'sae-a1', delivery!.keyIds.slice(0, 1), true);
    assert.equal(again.ok ? 200 : again.res.status, 400);
  });

  it('delivers the queued cancels and serves cross-site keys again once the peer is back', async () => {
    const queued = peekA.outboxRows();
    const logged = () =>
      readFileSync(join(sites.deployment.dir, 'kme-b.log'), 'utf8')
        .split('\n')
        .filter((line) => line.includes('peer cancelled burned keys')).length;
    const before = logged();
    await sites.startKme('kme-b');
    await eventually(() => peekA.outboxRows() === 0, 15_000, 'the outbox at kme-a to drain');
    const cancels = logged() - before;
    assert.ok(cancels >= queued, `kme-b confirmed ${cancels} cancels, ${queued} were queued`);

    // A peer known down is probed by at most one request a second: until a probe has found kme-b
    // back, requests are refused at once with 503 (SAEs retry), never served from a guess.
    await eventually(
      async () => {
        const { res, delivery } = await ask(CROSS, 4);
        if (delivery) await fetchAll(delivery);
        return res.status === 200;
      },
      15_000,
      'a cross-site request served once the peer is back',
    );
    for (const pair of [CROSS, BACK, MIXED, CROSS, BACK]) {
      const { res, delivery } = await ask(pair, 4);
      assert.equal(res.status, 200, shown(res));
      await fetchAll(delivery!);
    }
    // Material cut before the outage, for refused requests, or after it is never handed out twice.
    assert.deepEqual(ledger.problems, []);
    assert.equal(peekA.readyKeys(), 0, 'no key left waiting at kme-a');
  });
});
