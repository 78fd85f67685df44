import assert from 'node:assert/strict';
import { afterEach, beforeEach, describe, it } from 'node:test';
import type { LeaseStore } from '../../src/stores/leases.js';

export interface LeasesUnderTest {
  readonly leases: LeaseStore;
  /** Lets time pass for the store's clock (a real store: really waits). */
  pass(ms: number): Promise<void>;
  cleanup(): Promise<void>;
}

/** The contract of every LeaseStore: one holder at a time, renewals, expiry and release. */
export function describeLeaseConformance(name: string, create: () => Promise<LeasesUnderTest>): void {
  describe(`LeaseStore conformance: ${name}`, () => {
    let sut: LeasesUnderTest;
    let leases: LeaseStore;
    beforeEach(async () => {
      sut = await create();
      leases = sut.leases;
    });
    afterEach(() => sut.cleanup());

    it('gives a free lease to the first holder and refuses others while it runs', async () => {
      assert.equal(await leases.leaseHolder('link:l1'), null);
      assert.equal(await leases.holdLease('link:l1', 'r1', 5_000), true);
      assert.equal(await leases.holdLease('link:l1', 'r2', 5_000), false);
      assert.equal(await leases.leaseHolder('link:l1'), 'r1');
      assert.equal(await leases.holdLease('link:l2', 'r2', 5_000), true, 'leases are independent');
    });

    it('renews for its holder, and passes to another once it runs out', async () => {
      assert.equal(await leases.holdLease('outbox', 'r1', 300), true);
      await sut.pass(150);
      assert.equal(await leases.holdLease('outbox', 'r1', 300), true, 'renewed');
      await sut.pass(200);
      assert.equal(await leases.holdLease('outbox', 'r2', 300), false, 'the renewal counts from its own time');
      await sut.pass(200);
      assert.equal(await leases.leaseHolder('outbox'), null);
      assert.equal(await leases.holdLease('outbox', 'r2', 300), true);
      assert.equal(await leases.holdLease('outbox', 'r1', 300), false, 'the old holder cannot take it back');
    });

    it('is released only by its holder', async () => {
      await leases.holdLease('outbox', 'r1', 60_000);
      await leases.releaseLease('outbox', 'r2');
      assert.equal(await leases.leaseHolder('outbox'), 'r1');
      await leases.releaseLease('outbox', 'r1');
      assert.equal(await leases.holdLease('outbox', 'r2', 60_000), true);
    });

    it('gives a contested lease to exactly one of many holders at once', async () => {
      const holders = Array.from({ length: 8 }, (_, i) => `r${i}`);
      const won = await Promise.all(holders.map((h) => leases.holdLease('link:x', h, 60_000)));
      assert.equal(won.filter(Boolean).length, 1);
      assert.equal(await leases.leaseHolder('link:x'), holders[won.indexOf(true)]);
    });
  });
}
