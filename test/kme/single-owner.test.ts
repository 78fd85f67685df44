import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { SingleOwner } from '../../src/kme/single-owner.js';
import { MemoryLeases, type LeaseStore } from '../../src/stores/leases.js';

/** Records when the work ran on each replica. */
const replica = (holder: string, leases: LeaseStore, ttlMs = 90) => {
  const log: string[] = [];
  const owner = new SingleOwner({
    name: 'link:l1',
    holder,
    leases,
    ttlMs,
    gain: () => void log.push('gain'),
    lose: () => void log.push('lose'),
  });
  return { owner, log };
};

/** A lease store that stops answering (a database out of reach) while `down` is set. */
class Unreachable implements LeaseStore {
  down = false;
  constructor(readonly inner: LeaseStore) {}
  holdLease(name: string, holder: string, ttlMs: number) {
    return this.down ? Promise.reject(new Error('connection refused')) : this.inner.holdLease(name, holder, ttlMs);
  }
  releaseLease(name: string, holder: string) {
    return this.inner.releaseLease(name, holder);
  }
  leaseHolder(name: string) {
    return this.inner.leaseHolder(name);
  }
}

describe('SingleOwner', () => {
  it('runs the work on one replica; another takes it over when the first stops', async () => {
    const leases = new MemoryLeases();
    const a = replica('a', leases);
    const b = replica('b', leases);
    await a.owner.start();
    await b.owner.start();
    await sleep(20);
    assert.deepEqual([a.log, b.log], [['gain'], []]);
    await a.owner.stop();
    assert.deepEqual(a.log, ['gain', 'lose']);
    await sleep(100);
    assert.deepEqual(b.log, ['gain'], 'the released lease is taken at the next renewal');
    await b.owner.stop();
  });

  it('gives the work up before its lease can run out when the store is out of reach', async () => {
    const shared = new MemoryLeases();
    const cut = new Unreachable(shared);
    const a = replica('a', cut);
    const b = replica('b', shared);
    await a.owner.start();
    await sleep(10);
    cut.down = true;
    const lostAt = Date.now();
    // While a cannot renew, b keeps trying; a must have stopped before b starts.
    await b.owner.start();
    while (!b.owner.owning) await sleep(5);
    assert.deepEqual(a.log, ['gain', 'lose'], 'a stopped the work');
    assert.ok(!a.owner.owning);
    assert.ok(Date.now() - lostAt < 400, 'b took over within a few lease lifetimes');
    await Promise.all([a.owner.stop(), b.owner.stop()]);
  });

  it('never runs the work on two replicas at once, through many hand-overs', async () => {
    const leases = new MemoryLeases();
    let running = 0;
    let most = 0;
    const replicas = ['a', 'b', 'c'].map(
      (holder) =>
        new SingleOwner({
          name: 'outbox',
          holder,
          leases,
          ttlMs: 30,
          gain: () => {
            most = Math.max(most, ++running);
          },
          lose: () => void running--,
        }),
    );
    for (const r of replicas) await r.start();
    // Each owner in turn stops; one of the others must take over, and only one.
    for (let round = 0; round < 2; round++) {
      await sleep(40);
      const owner = replicas.find((r) => r.owning);
      assert.ok(owner, `round ${round}: someone owns the work`);
      await owner.stop();
    }
    await Promise.all(replicas.map((r) => r.stop()));
    assert.equal(most, 1);
    assert.equal(running, 0);
  });
});
