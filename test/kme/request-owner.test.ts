import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { QksError } from '../../src/domain/errors.js';
import { RequestOwner } from '../../src/kme/request-owner.js';
import { MemoryLeases, type LeaseStore } from '../../src/stores/leases.js';

/** Records when the work ran on each replica. */
const replica = (holder: string, leases: LeaseStore, ttlMs = 90) => {
  const log: string[] = [];
  const owner = new RequestOwner({
    name: 'kme-b/link:l1',
    holder,
    leases,
    ttlMs,
    gain: () => void log.push('gain'),
    lose: () => void log.push('lose'),
  });
  return { owner, log };
};

const answer = () => Promise.resolve('answered');
const refusal = (err: unknown) => err instanceof QksError && err.code === 'LINK_OWNED_ELSEWHERE';

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

describe('RequestOwner', () => {
  it('runs the work where requests arrive; another replica refuses them meanwhile', async () => {
    const leases = new MemoryLeases();
    const a = replica('a', leases);
    const b = replica('b', leases);
    assert.equal(await a.owner.serve(answer), 'answered');
    assert.deepEqual(a.log, ['gain'], 'the work started before the request was answered');
    await assert.rejects(b.owner.serve(answer), refusal);
    // Requests keep coming to a: it keeps the lease through several of its lifetimes.
    for (let i = 0; i < 10; i++) {
      await sleep(30);
      await a.owner.serve(answer);
    }
    assert.deepEqual(a.log, ['gain']);
    await assert.rejects(b.owner.serve(answer), refusal);
    assert.deepEqual(b.log, []);
    await Promise.all([a.owner.stop(), b.owner.stop()]);
  });

  it('gives the work up once requests stop coming, so that the replica they go to now takes it', async () => {
    const leases = new MemoryLeases();
    const a = replica('a', leases);
    const b = replica('b', leases);
    await a.owner.serve(answer);
    const movedAt = Date.now();
    for (;;) {
      const served = await b.owner.serve(answer).then(
        () => true,
        (err: unknown) => (assert.ok(refusal(err)), false),
      );
      if (served) break;
      await sleep(10);
    }
    assert.ok(Date.now() - movedAt < 300, 'taken over within a few lease lifetimes');
    assert.deepEqual(a.log, ['gain', 'lose'], 'a stopped the work before b started it');
    assert.deepEqual(b.log, ['gain']);
    await Promise.all([a.owner.stop(), b.owner.stop()]);
  });

  it('never runs the work on two replicas at once while requests move between them', async () => {
    const leases = new MemoryLeases();
    let running = 0;
    let most = 0;
    const replicas = ['a', 'b', 'c'].map(
      (holder) =>
        new RequestOwner({
          name: 'kme-b/link:l1',
          holder,
          leases,
          ttlMs: 60,
          gain: async () => {
            most = Math.max(most, ++running);
            await sleep(1);
          },
          lose: async () => {
            await sleep(1);
            running--;
          },
        }),
    );
    let served = 0;
    // Bursts of requests to one replica, then another, with pauses near the lease's lifetime.
    for (let burst = 0; burst < 12; burst++) {
      const to = replicas[burst % 3]!;
      const until = Date.now() + 80;
      while (Date.now() < until) {
        served += await to.serve(() => Promise.resolve(1)).catch(() => 0);
        await sleep(3);
      }
      await sleep(burst % 2 === 0 ? 55 : 70);
    }
    await Promise.all(replicas.map((r) => r.stop()));
    assert.equal(most, 1, 'one replica ran the work at a time');
    assert.equal(running, 0);
    assert.ok(served > 50, `requests were served (${served})`);
  });

  it('gives the work up when it fails to start, and starts it again on the next request', async () => {
    const leases = new MemoryLeases();
    const log: string[] = [];
    let failures = 1;
    const a = new RequestOwner({
      name: 'kme-b/link:l1',
      holder: 'a',
      leases,
      ttlMs: 1000,
      gain: () => {
        log.push('gain');
        if (failures-- > 0) throw new Error('the store is away');
      },
      lose: () => void log.push('lose'),
    });
    await a.serve(answer);
    assert.ok(!a.owning, 'not owning work that did not start');
    assert.equal(await leases.leaseHolder('kme-b/link:l1'), null, 'the lease handed back');
    assert.equal(await a.serve(answer), 'answered');
    assert.deepEqual(log, ['gain', 'lose', 'gain']);
    assert.ok(a.owning);
    await a.stop();
  });

  it('keeps the work while a long request runs', async () => {
    const leases = new MemoryLeases();
    const a = replica('a', leases, 60);
    const b = replica('b', leases, 60);
    await a.owner.serve(() => sleep(250));
    await assert.rejects(b.owner.serve(answer), refusal);
    assert.deepEqual(a.log, ['gain']);
    await Promise.all([a.owner.stop(), b.owner.stop()]);
  });

  it('gives the work up before its lease can run out when the store is out of reach', async () => {
    const shared = new MemoryLeases();
    const cut = new Unreachable(shared);
    // A lease long enough that its tenth covers a timer that fires late on a busy machine.
    const a = replica('a', cut, 300);
    const b = replica('b', shared, 300);
    const requests = (async () => {
      // Requests keep coming to a, which cannot renew its lease.
      for (let i = 0; i < 50; i++) {
        await a.owner.serve(answer).catch(() => undefined);
        await sleep(10);
      }
    })();
    await sleep(20);
    cut.down = true;
    const lostAt = Date.now();
    while (
      !(await b.owner.serve(answer).then(
        () => true,
        (err: unknown) => (assert.ok(refusal(err)), false),
      ))
    )
      await sleep(5);
    assert.ok(Date.now() - lostAt < 1000, 'b took over within a few lease lifetimes');
    assert.deepEqual(a.log, ['gain', 'lose'], 'a stopped the work before b started it');
    assert.ok(!a.owner.owning);
    await requests;
    await Promise.all([a.owner.stop(), b.owner.stop()]);
  });
});
