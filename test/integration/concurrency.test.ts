import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { LinkPool } from '../../src/kme/link-pool.js';
import type { BlockSink, KeySource, KeySourceInfo } from '../../src/sources/key-source.js';
import { Barrier } from '../../src/stores/barrier.js';
import { MemoryKeyStore } from '../../src/stores/memory-store.js';
import type { NewKey } from '../../src/stores/key-store.js';
import { KeyLedger, type Delivery } from '../helpers/key-ledger.js';
import { askKeys, BOTH_WAYS, fetchKeys, keysOf, pick, runLoad, SIZES } from '../helpers/key-traffic.js';
import type { TestClient } from '../helpers/sae-client.js';
import { eventually, startSites, type TwoSites } from '../helpers/two-kmes.js';
import { shown } from '../helpers/redact.js';

const NOT_FOUND = 'one or more keys specified are not found on KME';

describe('requests served at both KMEs at the same time', () => {
  let sites: TwoSites;
  const clients = new Map<string, TestClient>();
  const client = (sae: string) => clients.get(sae) ?? clients.set(sae, sites.sae(sae)).get(sae)!;

  before(async () => {
    sites = await startSites({ rateBps: 1_000_000 });
    for (const [master, slave] of [
      ['sae-a1', 'sae-b1'],
      ['sae-b1', 'sae-a1'],
    ] as const) {
      await eventually(
        async () => {
          const s = await client(master).get(`/api/v1/keys/${slave}/status`);
          return (s.body as { stored_key_count: number }).stored_key_count >= 1000;
        },
        15_000,
        `key material at ${master}'s KME`,
      );
    }
  });
  after(() => sites.stop());

  /** Each slave fetches the delivery (POST or GET, at random), then a second fetch must fail. */
  async function slavesFetch(ledger: KeyLedger, d: Delivery): Promise<void> {
    await Promise.all(
      d.slaves.map(async (slave) => {
        const got = await fetchKeys(client(slave), d.master, d.keyIds, Math.random() < 0.4);
        if (!got.ok) return void ledger.problems.push(`${slave} could not fetch: ${shown(got.res)}`);
        ledger.slave(slave, d.master, got.keys);
        const again = await fetchKeys(client(slave), d.master, [pick(d.keyIds)], Math.random() < 0.5);
        if (again.ok || again.res.status !== 400 || !again.res.text.includes(NOT_FOUND)) {
          ledger.problems.push(`${slave} fetched a key of ${d.master} twice`);
        }
      }),
    );
  }

  it('keeps key IDs and material unique and gives each slave the master bytes once', async () => {
    const ledger = new KeyLedger();
    const deferred: Delivery[] = [];
    const ops = await runLoad({ workers: 16, maxOps: 600, maxMs: 30_000 }, async () => {
      const pair = pick(BOTH_WAYS);
      const res = await askKeys(
        client(pair.master),
        pair,
        1 + Math.floor(Math.random() * 4),
        pick(SIZES),
        Math.random() < 0.3,
      );
      if (res.status !== 200) return void ledger.problems.push(`${pair.master}: ${shown(res)}`);
      const d = ledger.master(pair, keysOf(res));
      // Some keys wait while other requests run, so fetched and waiting keys mix in the stores.
      if (Math.random() < 0.25) deferred.push(d);
      else await slavesFetch(ledger, d);
    });
    await runLoad({ workers: 8, maxOps: deferred.length, maxMs: 20_000 }, (i) => slavesFetch(ledger, deferred[i]!));

    assert.deepEqual(ledger.problems, []);
    assert.ok(ops >= 300, `only ${ops} requests ran in time`);
    const left = ledger.deliveries.flatMap((d) => d.keyIds.filter((id) => ledger.pendingSlaves(id).length > 0));
    assert.deepEqual(left, [], 'keys some slave never got');
    for (const sae of ['sae-a1', 'sae-b1']) {
      const info = await client(sae).get('/api/v1/information/info');
      assert.equal((info.body as { keys_waiting_for_slaves: number }).keys_waiting_for_slaves, 0, `${sae}'s KME`);
    }
  });
});

/** A source that hands out blocks when the test says so, as SimulatedLink would. */
class ScriptedSource implements KeySource {
  readonly linkId = 'link-a-b';
  readonly blockBits = 256;
  sink: BlockSink | undefined;
  info(): KeySourceInfo {
    return {
      linkId: this.linkId,
      kind: 'scripted',
      protocol: 'test',
      state: 'running',
      rateBps: 1,
      blockBits: 256,
      description: 'test',
    };
  }
  start(_afterSeq: number | null, sink: BlockSink): void {
    this.sink = sink;
  }
  async stop(): Promise<void> {}
  deliver(seqs: number[]): Promise<void> {
    return this.sink!(
      seqs.map((seq) => ({ seq, bytes: randomBytes(32) })),
      Math.max(...seqs),
    );
  }
}

describe('link ingestion', () => {
  // Regression: a batch the store added but whose trim then failed was delivered again by the
  // source, and INSERT OR IGNORE brought back blocks already cut into keys: the same material twice.
  it('never takes a block twice when a source repeats a batch after a failure', async () => {
    const store = new MemoryKeyStore();
    let failTrims = 1;
    const discard = store.discardBlocksBefore.bind(store);
    store.discardBlocksBefore = async (...args: Parameters<typeof discard>) => {
      if (failTrims-- > 0) throw new Error('disk full');
      return discard(...args);
    };
    const source = new ScriptedSource();
    const ends = { linkId: source.linkId, endpoints: ['kme-a', 'kme-b'] as const, blockBits: 256 };
    const pool = new LinkPool(
      { kmeId: 'kme-a', ends, capacityBlocks: 100 },
      store,
      new Barrier(randomBytes(32)),
      source,
    );
    await pool.start();
    const key = (keyId: string): NewKey => ({
      keyId,
      sizeBits: 256,
      blockCount: 1,
      masterSae: 'sae-a1',
      pendingSlaves: ['sae-a2'],
      peerKme: null,
      state: 'ready',
    });

    const first = source.deliver([0, 1, 2, 3]);
    await Promise.resolve(); // the batch is in the store; a request cuts a key before the trim fails
    const k1 = await store.takeOwnBlocks(ends.linkId, 'kme-a', [key('k1')]);
    await assert.rejects(first, /disk full/);
    await source.deliver([0, 1, 2, 3]); // the source retries the same batch
    const k2 = await store.takeOwnBlocks(ends.linkId, 'kme-a', [key('k2')]);

    assert.deepEqual(
      k1?.map((k) => k.blocks.map((b) => b.seq)),
      [[0]],
    );
    assert.deepEqual(
      k2?.map((k) => k.blocks.map((b) => b.seq)),
      [[2]],
    );
    assert.equal(await store.takeOwnBlocks(ends.linkId, 'kme-a', [key('k3')]), null);
  });

  // Regression: a batch was added before the oldest blocks were trimmed, and a status read in
  // between said stored_key_count > max_key_count (up to 101,320 of 100,000).
  it('never counts more own blocks than the capacity, even between adding a batch and trimming', async () => {
    const store = new MemoryKeyStore();
    const source = new ScriptedSource();
    const ends = { linkId: source.linkId, endpoints: ['kme-a', 'kme-b'] as const, blockBits: 256 };
    const pool = new LinkPool({ kmeId: 'kme-a', ends, capacityBlocks: 4 }, store, new Barrier(randomBytes(32)), source);
    const seen: number[] = [];
    const add = store.addBlocks.bind(store);
    store.addBlocks = async (...args: Parameters<typeof add>) => {
      await add(...args);
      seen.push(await pool.ownBlocks()); // what a status request at this moment reads
    };
    await pool.start();
    for (let batch = 0; batch < 4; batch++) await source.deliver(Array.from({ length: 8 }, (_, i) => batch * 8 + i));
    assert.deepEqual(seen, [4, 4, 4, 4]);
    assert.equal(
      await store.countBlocks(ends.linkId, 'kme-a'),
      4,
      'and the store holds exactly the capacity after trimming',
    );
  });
});
