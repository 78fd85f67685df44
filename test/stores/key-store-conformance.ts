import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { afterEach, beforeEach, describe, it } from 'node:test';
import { relayConformance } from './relay-conformance.js';
import {
  MAX_REMEMBERED_CANCELS,
  type IncomingBlock,
  type ClaimedKey,
  type KeyStore,
  type NewKey,
} from '../../src/stores/key-store.js';

export interface StoreUnderTest {
  readonly store: KeyStore;
  cleanup(): Promise<void>;
}

const LINK = 'link-a-b';
const block = (seq: number): IncomingBlock => ({
  seq,
  owner: seq % 2 === 0 ? 'kme-a' : 'kme-b',
  sealed: randomBytes(60),
});
const blocks = (from: number, to: number) => Array.from({ length: to - from + 1 }, (_, i) => block(from + i));

/** A key record as the KME service makes one (a test's or a benchmark's). */
export const newKey = (keyId: string, over: Partial<NewKey> = {}): NewKey => ({
  keyId,
  sizeBits: 256,
  blockCount: 1,
  masterSae: 'sae-a1',
  pendingSlaves: [],
  peerKme: 'kme-b',
  state: 'reserved',
  ...over,
});

/** A key kme-b cut from its block `seq` for sae-b1 and sae-a1, as kme-b's reservation names it. */
const peerKey = (keyId: string, seq: number): ClaimedKey => ({
  keyId,
  sizeBits: 256,
  seqs: [seq],
  masterSae: 'sae-b1',
  pendingSlaves: ['sae-a1'],
});

/**
 * The contract every KeyStore backend must keep. Run it from one test file per backend:
 * `describeKeyStoreConformance('sqlite', async () => ...)`.
 */
export function describeKeyStoreConformance(name: string, create: () => Promise<StoreUnderTest>): void {
  describe(`KeyStore conformance: ${name}`, () => {
    let sut: StoreUnderTest;
    let store: KeyStore;
    beforeEach(async () => {
      sut = await create();
      store = sut.store;
    });
    afterEach(() => sut.cleanup());

    it('adds blocks once per number and keeps the highest last sequence', async () => {
      assert.equal(await store.lastSeq(LINK), null);
      const first = blocks(0, 9);
      await store.addBlocks(LINK, first, 9);
      await store.addBlocks(LINK, [{ ...first[0]!, sealed: randomBytes(60) }], 3);
      assert.equal(await store.lastSeq(LINK), 9);
      assert.equal(await store.countBlocks(LINK, 'kme-a'), 5);
      assert.equal(await store.countBlocks(LINK, 'kme-b'), 5);
      const [taken] = (await store.takeOwnBlocks(LINK, 'kme-a', [newKey('k0')]))!;
      assert.deepEqual(taken!.blocks[0]!.sealed, first[0]!.sealed, 'a duplicate does not replace the block');
      assert.equal(await store.lastSeq('other-link'), null);
    });

    it('discards one owner’s blocks below a number', async () => {
      await store.addBlocks(LINK, blocks(0, 19), 19);
      assert.equal(await store.discardBlocksBefore(LINK, 'kme-a', 10), 5);
      assert.equal(await store.countBlocks(LINK, 'kme-a'), 5);
      assert.equal(await store.countBlocks(LINK, 'kme-b'), 10);
      const [k] = (await store.takeOwnBlocks(LINK, 'kme-a', [newKey('k')]))!;
      assert.equal(k!.blocks[0]!.seq, 10);
    });

    it('cuts keys from the oldest own blocks, in order, with their records', async () => {
      const added = blocks(0, 11);
      await store.addBlocks(LINK, added, 11);
      const records = await store.takeOwnBlocks(LINK, 'kme-a', [
        newKey('k1', { blockCount: 2, sizeBits: 512, pendingSlaves: ['sae-a2'] }),
        newKey('k2'),
      ]);
      assert.ok(records);
      assert.deepEqual(
        records.map((r) => r.blocks.map((b) => b.seq)),
        [[0, 2], [4]],
      );
      assert.deepEqual(records[0]!.blocks[1]!.sealed, added[2]!.sealed);
      assert.equal(records[0]!.sizeBits, 512);
      assert.deepEqual(records[0]!.pendingSlaves, ['sae-a2']);
      assert.equal(records[0]!.state, 'reserved');
      assert.equal(records[0]!.peerKme, 'kme-b');
      assert.equal(records[0]!.linkId, LINK);
      assert.equal(await store.countBlocks(LINK, 'kme-a'), 3);
      assert.equal(await store.countBlocks(LINK, 'kme-b'), 6, 'the peer’s share is untouched');
      assert.deepEqual(await store.countKeys(), { reserved: 2, ready: 0 });
    });

    it('never takes back a block of a number consumed already (cut or discarded)', async () => {
      await store.addBlocks(LINK, blocks(0, 11), 11);
      await store.takeOwnBlocks(LINK, 'kme-a', [newKey('k1')]);
      await store.discardBlocksBefore(LINK, 'kme-b', 4);
      // The link hands blocks 0 to 3 over again (a replay after a restore, say).
      await store.addBlocks(LINK, blocks(0, 3), 11);
      assert.equal(await store.countBlocks(LINK, 'kme-a'), 5, 'block 0 was cut; block 2 is still there');
      assert.equal(await store.countBlocks(LINK, 'kme-b'), 4, 'blocks 1 and 3 were discarded');
      const [k2] = (await store.takeOwnBlocks(LINK, 'kme-a', [newKey('k2')]))!;
      assert.equal(k2!.blocks[0]!.seq, 2);
      assert.deepEqual(await store.claimBlocks(LINK, 'kme-b', [peerKey('c', 3)]), {
        ok: false,
        missingSeqs: [3],
        existingKeyIds: [],
      });
    });

    it('changes nothing when there are too few blocks or a key ID exists', async () => {
      await store.addBlocks(LINK, blocks(0, 5), 5);
      assert.equal(await store.takeOwnBlocks(LINK, 'kme-a', [newKey('k1', { blockCount: 4 })]), null);
      assert.equal(await store.countBlocks(LINK, 'kme-a'), 3);
      assert.ok(await store.takeOwnBlocks(LINK, 'kme-a', [newKey('k1')]));
      assert.equal(await store.takeOwnBlocks(LINK, 'kme-a', [newKey('k2'), newKey('k1')]), null);
      assert.equal(await store.countBlocks(LINK, 'kme-a'), 2);
      assert.deepEqual(await store.countKeys(), { reserved: 1, ready: 0 });
    });

    it('claims exactly the named peer blocks, all or nothing', async () => {
      await store.addBlocks(LINK, blocks(0, 9), 9);
      const claim = (keyId: string, seqs: number[]) => ({
        keyId,
        sizeBits: 256 * seqs.length,
        seqs,
        masterSae: 'sae-b1',
        pendingSlaves: ['sae-a1', 'sae-a2'],
      });
      const missing = await store.claimBlocks(LINK, 'kme-b', [claim('k1', [1, 3]), claim('k2', [11])]);
      assert.deepEqual(missing, { ok: false, missingSeqs: [11], existingKeyIds: [] });
      const notOwned = await store.claimBlocks(LINK, 'kme-b', [claim('k1', [2])]);
      assert.equal(notOwned.ok, false, 'an even block is not kme-b’s');
      assert.equal(await store.countBlocks(LINK, 'kme-b'), 5, 'a refused claim takes nothing');

      assert.deepEqual(await store.claimBlocks(LINK, 'kme-b', [claim('k1', [3, 1])]), { ok: true });
      assert.equal(await store.countBlocks(LINK, 'kme-b'), 3);
      const again = await store.claimBlocks(LINK, 'kme-b', [claim('k9', [1])]);
      assert.deepEqual(again, { ok: false, missingSeqs: [1], existingKeyIds: [] }, 'a used block is gone');
      const dup = await store.claimBlocks(LINK, 'kme-b', [claim('k1', [5])]);
      assert.deepEqual(dup, { ok: false, missingSeqs: [], existingKeyIds: ['k1'] });
      assert.deepEqual(await store.countKeys(), { reserved: 0, ready: 1 });
      const got = await store.takeForSlave('sae-b1', 'sae-a1', ['k1']);
      assert.ok(got.ok);
      assert.deepEqual(
        got.keys[0]!.blocks.map((b) => b.seq),
        [3, 1],
        'blocks keep the order the peer named',
      );
    });

    it('marks delivered keys ready for local slaves, or drops them', async () => {
      await store.addBlocks(LINK, blocks(0, 9), 9);
      await store.takeOwnBlocks(LINK, 'kme-a', [newKey('remote-only'), newKey('mixed', { pendingSlaves: ['sae-a2'] })]);
      await store.markDelivered(['remote-only', 'mixed', 'unknown']);
      assert.deepEqual(await store.countKeys(), { reserved: 0, ready: 1 });
      assert.deepEqual(await store.takeForSlave('sae-a1', 'sae-b1', ['remote-only']), {
        ok: false,
        reason: 'not_found',
      });
      assert.ok((await store.takeForSlave('sae-a1', 'sae-a2', ['mixed'])).ok);
    });

    it('delivers to each slave once, all or nothing, and forgets a key after its last slave', async () => {
      await store.addBlocks(LINK, blocks(0, 9), 9);
      const ready = (id: string) => newKey(id, { pendingSlaves: ['sae-b1', 'sae-b2'], state: 'ready', peerKme: null });
      await store.takeOwnBlocks(LINK, 'kme-a', [ready('k1'), ready('k2')]);
      assert.deepEqual(await store.takeForSlave('sae-a1', 'sae-b1', ['k1', 'nope']), {
        ok: false,
        reason: 'not_found',
      });
      assert.deepEqual(await store.takeForSlave('sae-a2', 'sae-b1', ['k1']), { ok: false, reason: 'not_found' });
      assert.deepEqual(await store.takeForSlave('sae-a1', 'sae-x', ['k1']), { ok: false, reason: 'unauthorized' });
      const first = await store.takeForSlave('sae-a1', 'sae-b1', ['k1', 'k2']);
      assert.ok(first.ok);
      assert.deepEqual(
        first.keys.map((k) => k.keyId),
        ['k1', 'k2'],
      );
      assert.deepEqual(
        await store.takeForSlave('sae-a1', 'sae-b1', ['k1']),
        { ok: false, reason: 'not_found' },
        'a slave that has its key is told it is gone, not that it never had a right to it',
      );
      assert.deepEqual(await store.countKeys(), { reserved: 0, ready: 2 });
      assert.ok((await store.takeForSlave('sae-a1', 'sae-b2', ['k1'])).ok);
      assert.deepEqual(await store.takeForSlave('sae-a1', 'sae-b2', ['k1']), { ok: false, reason: 'not_found' });
      assert.deepEqual(await store.countKeys(), { reserved: 0, ready: 1 });
    });

    it('never hands a reserved key to a slave', async () => {
      await store.addBlocks(LINK, blocks(0, 3), 3);
      await store.takeOwnBlocks(LINK, 'kme-a', [newKey('k1', { pendingSlaves: ['sae-a2'] })]);
      assert.deepEqual(await store.takeForSlave('sae-a1', 'sae-a2', ['k1']), { ok: false, reason: 'not_found' });
    });

    it('burns reserved keys and queues one cancel per peer', async () => {
      await store.addBlocks(LINK, blocks(0, 19), 19);
      await store.takeOwnBlocks(LINK, 'kme-a', [newKey('k1'), newKey('k2'), newKey('k3', { peerKme: 'kme-c' })]);
      await store.takeOwnBlocks(LINK, 'kme-a', [
        newKey('local', { state: 'ready', peerKme: null, pendingSlaves: ['s'] }),
      ]);
      await store.cancelReserved(['k1', 'local']);
      assert.deepEqual(await store.countKeys(), { reserved: 2, ready: 1 }, 'only reserved keys are cancelled');
      assert.equal(await store.burnAllReserved(), 2);
      assert.deepEqual(await store.countKeys(), { reserved: 0, ready: 1 });
      const outbox = await store.listOutbox(10);
      assert.deepEqual(
        outbox.map((e) => [e.peerKme, [...e.keyIds].sort()]),
        [
          ['kme-b', ['k1']],
          ['kme-b', ['k2']],
          ['kme-c', ['k3']],
        ].sort(),
      );
      assert.equal((await store.listOutbox(1)).length, 1);
      await store.ackOutbox([outbox[0]!.id]);
      assert.deepEqual(
        (await store.listOutbox(10)).map((e) => e.id),
        outbox.slice(1).map((e) => e.id),
      );
      assert.equal(await store.burnAllReserved(), 0);
    });

    it('removes keys a peer cancelled and refuses their IDs afterwards', async () => {
      await store.addBlocks(LINK, blocks(0, 9), 9);
      await store.claimBlocks(LINK, 'kme-b', [peerKey('k1', 1)]);
      assert.deepEqual(await store.cancelKeys(['k1', 'k2'], 'kme-b'), { ok: true, removed: 1 });
      assert.deepEqual(await store.cancelKeys(['k1'], 'kme-b'), { ok: true, removed: 0 });
      assert.deepEqual(await store.countKeys(), { reserved: 0, ready: 0 });
      // A cancel may overtake its reservation: the late reservation must not store the key.
      const late = await store.claimBlocks(LINK, 'kme-b', [peerKey('k2', 3)]);
      assert.deepEqual(late, { ok: false, missingSeqs: [], existingKeyIds: ['k2'] });
      assert.equal(await store.countBlocks(LINK, 'kme-b'), 4);
    });

    it('lets a KME cancel only keys it cut, and remembers its cancels for it alone', async () => {
      await store.addBlocks(LINK, blocks(0, 9), 9);
      await store.addBlocks('link-b-c', [{ seq: 0, owner: 'kme-c', sealed: randomBytes(60) }], 0);
      assert.deepEqual(await store.claimBlocks(LINK, 'kme-b', [peerKey('from-b', 1)]), { ok: true });
      await store.takeOwnBlocks(LINK, 'kme-a', [newKey('mine', { state: 'ready', pendingSlaves: ['sae-a2'] })]);
      // kme-c names kme-b's key and this KME's own: refused as a whole, nothing changes.
      assert.deepEqual(await store.cancelKeys(['unknown', 'from-b', 'mine'], 'kme-c'), {
        ok: false,
        notTheirs: ['from-b', 'mine'],
      });
      assert.deepEqual(await store.cancelKeys(['mine'], 'kme-b'), { ok: false, notTheirs: ['mine'] });
      assert.deepEqual(await store.countKeys(), { reserved: 0, ready: 2 });
      assert.ok((await store.takeForSlave('sae-b1', 'sae-a1', ['from-b'])).ok, 'the slave still gets its key');
      // A cancel by kme-c of an ID not here yet does not stop kme-c... nor anyone else's reservation.
      assert.deepEqual(await store.cancelKeys(['early'], 'kme-c'), { ok: true, removed: 0 });
      assert.deepEqual(await store.claimBlocks(LINK, 'kme-b', [peerKey('early', 3)]), { ok: true });
      const late = await store.claimBlocks('link-b-c', 'kme-c', [peerKey('early', 0)]);
      assert.deepEqual(late, { ok: false, missingSeqs: [], existingKeyIds: ['early'] });
    });

    it('remembers a bounded number of cancelled IDs per KME, forgetting the oldest', async () => {
      await store.addBlocks(LINK, blocks(0, 3), 3);
      const ids = (from: number, n: number) => Array.from({ length: n }, (_, i) => `c-${from + i}`);
      assert.deepEqual(await store.cancelKeys(['first'], 'kme-b'), { ok: true, removed: 0 });
      for (let at = 0; at < MAX_REMEMBERED_CANCELS; at += 4096) {
        // Later than 'first' (the clock may not have moved within a test).
        await new Promise((r) => setTimeout(r, at === 0 ? 5 : 0));
        assert.ok((await store.cancelKeys(ids(at, 4096), 'kme-b')).ok);
      }
      assert.deepEqual(await store.claimBlocks(LINK, 'kme-b', [peerKey('first', 1)]), { ok: true }, 'forgotten');
      const last = `c-${MAX_REMEMBERED_CANCELS - 1}`;
      const kept = await store.claimBlocks(LINK, 'kme-b', [peerKey(last, 3)]);
      assert.deepEqual(kept, { ok: false, missingSeqs: [], existingKeyIds: [last] });
    });

    it('returns the blocks of reserved keys the peer never heard of, queueing no cancel', async () => {
      const added = blocks(0, 7);
      await store.addBlocks(LINK, added, 7);
      await store.takeOwnBlocks(LINK, 'kme-a', [newKey('ready', { state: 'ready', pendingSlaves: ['s'] })]);
      await store.takeOwnBlocks(LINK, 'kme-a', [newKey('k1', { blockCount: 2 }), newKey('k2')]);
      assert.equal(await store.countBlocks(LINK, 'kme-a'), 0);
      assert.equal(await store.returnReserved(['k1', 'k2', 'ready', 'unknown']), 2, 'only reserved keys go back');
      assert.equal(await store.countBlocks(LINK, 'kme-a'), 3);
      assert.deepEqual(await store.countKeys(), { reserved: 0, ready: 1 });
      assert.deepEqual(await store.listOutbox(10), []);
      const [again] = (await store.takeOwnBlocks(LINK, 'kme-a', [newKey('k3', { blockCount: 2 })]))!;
      assert.deepEqual(
        again!.blocks.map((b) => [b.seq, b.sealed]),
        [2, 4].map((seq) => [seq, added[seq]!.sealed]),
        'the same sealed blocks, once',
      );
      // Returned out of order: k3 waits for k4, cut after it, then both go back.
      await store.takeOwnBlocks(LINK, 'kme-a', [newKey('k4')]);
      assert.equal(await store.returnReserved(['k3']), 0, 'k3 waits for k4');
      assert.deepEqual(await store.countKeys(), { reserved: 2, ready: 1 });
      assert.equal(await store.returnReserved(['k4']), 2, 'k4, then k3');
      assert.equal(await store.countBlocks(LINK, 'kme-a'), 3);
      // A waiting cut is burned, without a cancel, once the cut after it is consumed for good.
      await store.takeOwnBlocks(LINK, 'kme-a', [newKey('k5', { blockCount: 2 })]);
      await store.takeOwnBlocks(LINK, 'kme-a', [newKey('k6')]);
      assert.equal(await store.returnReserved(['k5']), 0);
      await store.markDelivered(['k6']);
      assert.deepEqual(await store.countKeys(), { reserved: 0, ready: 1 });
      assert.equal(await store.countBlocks(LINK, 'kme-a'), 0);
      assert.deepEqual(await store.listOutbox(10), []);
      assert.equal(await store.takeOwnBlocks(LINK, 'kme-a', [newKey('k7')]), null, 'nothing of k5 comes back');
      assert.equal(await store.countBlocks(LINK, 'kme-b'), 4, 'the peer’s share is untouched');
    });

    it('expires keys waiting for slaves, and remembered cancellations, from before a time', async () => {
      await store.addBlocks(LINK, blocks(0, 9), 9);
      const ready = newKey('old', { state: 'ready', peerKme: null, pendingSlaves: ['sae-a2'] });
      await store.takeOwnBlocks(LINK, 'kme-a', [ready, newKey('reserved')]);
      await store.cancelKeys(['gone'], 'kme-b');
      assert.equal(await store.expireBefore(Date.now() - 60_000), 0, 'nothing is that old');
      assert.equal(await store.expireBefore(Date.now() + 1), 1, 'only keys ready for slaves expire');
      assert.deepEqual(await store.countKeys(), { reserved: 1, ready: 0 });
      const again = await store.claimBlocks(LINK, 'kme-b', [peerKey('gone', 1)]);
      assert.deepEqual(again, { ok: true }, 'an expired cancellation is forgotten');
    });

    relayConformance(() => store);

    it('keeps preferences per SAE as JSON values', async () => {
      assert.deepEqual(await store.getPreferences('sae-a1'), {});
      await store.setPreference('sae-a1', 'log_level', 'debug');
      await store.setPreference('sae-a1', 'key_exchange_timeout', 12);
      await store.setPreference('sae-a1', 'log_level', 'warn');
      await store.setPreference('sae-a2', 'nested', { a: [1, true, null] });
      assert.deepEqual(await store.getPreferences('sae-a1'), { log_level: 'warn', key_exchange_timeout: 12 });
      assert.deepEqual(await store.getPreferences('sae-a2'), { nested: { a: [1, true, null] } });
    });
  });
}
