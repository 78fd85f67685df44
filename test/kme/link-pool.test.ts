import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { describe, it } from 'node:test';
import { LinkPool, MAX_BLOCK_WAITERS } from '../../src/kme/link-pool.js';
import { SimulatedLink } from '../../src/sources/simulated-link.js';
import { Barrier } from '../../src/stores/barrier.js';
import { MemoryKeyStore } from '../../src/stores/memory-store.js';

const CAPACITY = 1000;

/** A pool on a simulated link whose clock the test moves: no block arrives until it does. */
function quietPool() {
  let now = 1_000_000;
  const source = new SimulatedLink({
    linkId: 'link-a-b',
    seed: randomBytes(32),
    rateBps: 256_000,
    blockBits: 256,
    epochMs: now,
    historyBlocks: 10_000,
    tickMs: 5,
    now: () => now,
  });
  const ends = { linkId: 'link-a-b', endpoints: ['kme-a', 'kme-b'] as [string, string], blockBits: 256 };
  const store = new MemoryKeyStore();
  const pool = new LinkPool(
    { kmeId: 'kme-b', ends, capacityBlocks: CAPACITY },
    store,
    new Barrier(randomBytes(32)),
    source,
  );
  return { pool, advance: (ms: number) => (now += ms), store };
}

describe('waiting for blocks the peer saw first', () => {
  it('forgets a waiter when its time is up', async () => {
    const { pool } = quietPool();
    const waits = Array.from({ length: 50 }, (_, i) => pool.waitForSeq(i, 10));
    assert.equal(pool.waiting, 50);
    assert.deepEqual(await Promise.all(waits), Array(50).fill(false));
    assert.equal(pool.waiting, 0, 'timed-out waiters must not stay in memory');
  });

  it('refuses a block number beyond what the link can have produced, keeping no waiter', async () => {
    const { pool } = quietPool();
    for (const seq of [2 ** 53 - 1, 4 * CAPACITY]) {
      await assert.rejects(pool.waitForSeq(seq, 60_000), (err: Error & { code?: string }) => {
        assert.equal(err.code, 'BAD_REQUEST');
        assert.match(err.message, /beyond what the link can have produced/);
        return true;
      });
    }
    assert.equal(pool.waiting, 0);
  });

  it(`keeps at most ${MAX_BLOCK_WAITERS} waiters, refusing more at once`, async () => {
    const { pool } = quietPool();
    const waits = Array.from({ length: MAX_BLOCK_WAITERS }, () => pool.waitForSeq(5, 60_000));
    await assert.rejects(pool.waitForSeq(5, 60_000), /already wait for blocks/);
    assert.equal(pool.waiting, MAX_BLOCK_WAITERS);
    await pool.stop();
    assert.deepEqual(new Set(await Promise.all(waits)), new Set([false]), 'stopping releases every waiter');
    assert.equal(pool.waiting, 0);
  });

  it('wakes waiters when their block arrives', async () => {
    const { pool, advance } = quietPool();
    await pool.start();
    try {
      const wait = pool.waitForSeq(40, 60_000);
      assert.equal(pool.waiting, 1);
      advance(1000); // 1000 blocks
      assert.equal(await wait, true);
      assert.equal(pool.waiting, 0);
    } finally {
      await pool.stop();
    }
  });
});
