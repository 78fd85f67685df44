import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { it } from 'node:test';
import type { IncomingBlock, KeyStore } from '../../src/stores/key-store.js';

/** Link a-b: kme-a owns even blocks, kme-b odd ones; kme-b relays keys from kme-a on to kme-c. */
const LINK = 'link-a-b';
const OUT = 'link-b-c';
const blocks = (link: 'in' | 'out', from: number, to: number): IncomingBlock[] =>
  Array.from({ length: to - from + 1 }, (_, i) => {
    const seq = from + i;
    const owner = link === 'in' ? (seq % 2 === 0 ? 'kme-a' : 'kme-b') : seq % 2 === 0 ? 'kme-b' : 'kme-c';
    return { seq, owner, sealed: randomBytes(60) };
  });

/**
 * The store's part of trusted-node relay (docs/network.md): pads cut from a KME's own blocks, and
 * a previous hop's blocks taken for a relay without keeping them. Part of every backend's
 * conformance suite.
 */
export function relayConformance(store: () => KeyStore): void {
  it('relay: cuts one-time pad from the oldest own blocks, never twice, and makes no key of it', async () => {
    const s = store();
    await s.addBlocks(OUT, blocks('out', 0, 9), 9);
    const pad = await s.takeOwnPad(OUT, 'kme-b', 2);
    assert.deepEqual(
      pad?.map((b) => b.seq),
      [0, 2],
    );
    assert.equal(await s.countBlocks(OUT, 'kme-b'), 3);
    assert.equal(await s.takeOwnPad(OUT, 'kme-b', 4), null, 'too few: nothing taken');
    assert.equal(await s.countBlocks(OUT, 'kme-b'), 3);
    await s.addBlocks(OUT, blocks('out', 0, 3), 9);
    assert.deepEqual(
      (await s.takeOwnPad(OUT, 'kme-b', 1))?.map((b) => b.seq),
      [4],
      'a number consumed as pad never comes back',
    );
    assert.deepEqual(await s.countKeys(), { reserved: 0, ready: 0 });
  });

  it('relay: takes exactly the previous hop’s named blocks, all or nothing, and keeps none of them', async () => {
    const s = store();
    await s.addBlocks(LINK, blocks('in', 0, 9), 9);
    const missing = await s.relayIn(LINK, 'kme-a', [{ keyId: 'r1', sizeBits: 256, seqs: [0, 12] }], [4], ['kme-c']);
    assert.deepEqual(missing, { ok: false, missingSeqs: [12], existingKeyIds: [] });
    const notTheirs = await s.relayIn(LINK, 'kme-a', [{ keyId: 'r1', sizeBits: 256, seqs: [1] }], [4], ['kme-c']);
    assert.equal(notTheirs.ok, false, 'an odd block is not kme-a’s');
    assert.equal(await s.countBlocks(LINK, 'kme-a'), 5, 'a refused relay takes nothing');

    const taken = await s.relayIn(
      LINK,
      'kme-a',
      [
        { keyId: 'r1', sizeBits: 256, seqs: [2, 0] },
        { keyId: 'r2', sizeBits: 256, seqs: [6] },
      ],
      [4],
      ['kme-c'],
    );
    assert.ok(taken.ok);
    assert.deepEqual(
      taken.keys.map((k) => k.map((b) => b.seq)),
      [[2, 0], [6]],
      'each key’s blocks in the order named',
    );
    assert.deepEqual(
      taken.mac.map((b) => b.seq),
      [4],
    );
    assert.equal(await s.countBlocks(LINK, 'kme-a'), 1);
    assert.deepEqual(await s.countKeys(), { reserved: 0, ready: 0 }, 'no key is kept');
    const replay = await s.relayIn(LINK, 'kme-a', [{ keyId: 'r1', sizeBits: 256, seqs: [8] }], [], ['kme-c']);
    assert.deepEqual(replay, { ok: false, missingSeqs: [], existingKeyIds: ['r1'] }, 'a key ID relayed once');
    const used = await s.relayIn(LINK, 'kme-a', [{ keyId: 'r3', sizeBits: 256, seqs: [0] }], [], ['kme-c']);
    assert.deepEqual(used, { ok: false, missingSeqs: [0], existingKeyIds: [] }, 'a block relayed once');
    const take = await s.takeForSlave('sae-a1', 'sae-c1', ['r1']);
    assert.deepEqual(take, { ok: false, reason: 'not_found' }, 'a relayed key is nobody’s here');
  });

  it('relay: a cancel by the previous hop is queued on for the next; nobody else may cancel it', async () => {
    const s = store();
    await s.addBlocks(LINK, blocks('in', 0, 9), 9);
    await s.relayIn(
      LINK,
      'kme-a',
      [
        { keyId: 'r1', sizeBits: 256, seqs: [0] },
        { keyId: 'r2', sizeBits: 256, seqs: [2] },
      ],
      [],
      ['kme-c'],
    );
    assert.deepEqual(await s.cancelKeys(['r1'], 'kme-c'), { ok: false, notTheirs: ['r1'] });
    assert.deepEqual(await s.listOutbox(10), []);
    assert.deepEqual(await s.cancelKeys(['r1', 'r2', 'other'], 'kme-a'), { ok: true, removed: 0 });
    const out = await s.listOutbox(10);
    assert.deepEqual(
      out.map((e) => [e.peerKme, e.keyIds]),
      [['kme-c', ['r1', 'r2']]],
    );
    // Cancelled once: the relay record is gone, so cancelling again queues nothing more.
    await s.ackOutbox(out.map((e) => e.id));
    assert.deepEqual(await s.cancelKeys(['r1'], 'kme-a'), { ok: true, removed: 0 });
    assert.deepEqual(await s.listOutbox(10), []);
    const late = await s.relayIn(LINK, 'kme-a', [{ keyId: 'other', sizeBits: 256, seqs: [4] }], [], ['kme-c']);
    assert.deepEqual(late, { ok: false, missingSeqs: [], existingKeyIds: ['other'] }, 'refused after its cancel');
  });

  it('relay: records are forgotten after the key time-to-live, like keys', async () => {
    const s = store();
    await s.addBlocks(LINK, blocks('in', 0, 9), 9);
    await s.relayIn(LINK, 'kme-a', [{ keyId: 'r1', sizeBits: 256, seqs: [0] }], [], ['kme-c']);
    await s.expireBefore(Date.now() + 1);
    assert.deepEqual(await s.cancelKeys(['r1'], 'kme-a'), { ok: true, removed: 0 });
    assert.deepEqual(await s.listOutbox(10), [], 'an expired relay is not cancelled onward');
  });

  it('relay: keeps the keys for slaves here, with their masks, and goes on to several KMEs; a cancel reaches them all', async () => {
    const s = store();
    await s.addBlocks(LINK, blocks('in', 0, 9), 9);
    const mask = randomBytes(32);
    const kept = await s.relayIn(
      LINK,
      'kme-a',
      [{ keyId: 'm1', sizeBits: 256, seqs: [0], mask }],
      [2],
      ['kme-c', 'kme-d'],
      { masterSae: 'sae-a1', pendingSlaves: ['sae-b1'] },
    );
    assert.ok(kept.ok);
    assert.deepEqual(await s.countKeys(), { reserved: 0, ready: 1 });
    const got = await s.takeForSlave('sae-a1', 'sae-b1', ['m1']);
    assert.ok(got.ok);
    assert.deepEqual(
      got.keys[0]!.blocks.map((b) => b.seq),
      [0],
    );
    assert.ok(got.keys[0]!.mask?.equals(mask), 'the mask comes back with the key');

    await s.relayIn(LINK, 'kme-a', [{ keyId: 'm2', sizeBits: 256, seqs: [4] }], [], ['kme-c', 'kme-d'], {
      masterSae: 'sae-a1',
      pendingSlaves: ['sae-b1'],
    });
    assert.deepEqual(await s.cancelKeys(['m2'], 'kme-c'), { ok: false, notTheirs: ['m2'] });
    assert.deepEqual(await s.cancelKeys(['m2'], 'kme-a'), { ok: true, removed: 1 });
    assert.deepEqual(
      (await s.listOutbox(10)).map((e) => [e.peerKme, e.keyIds]),
      [
        ['kme-c', ['m2']],
        ['kme-d', ['m2']],
      ],
    );
    assert.deepEqual(await s.countKeys(), { reserved: 0, ready: 0 });
    const slavesOnly = await s.relayIn(LINK, 'kme-a', [{ keyId: 'm3', sizeBits: 256, seqs: [6] }], [], [], {
      masterSae: 'sae-a1',
      pendingSlaves: ['sae-b2'],
    });
    assert.ok(slavesOnly.ok, 'the end of a branch keeps the keys and goes on nowhere');
    await assert.rejects(s.relayIn(LINK, 'kme-a', [{ keyId: 'm4', sizeBits: 256, seqs: [8] }], [], []), RangeError);
  });

  it('relay: a multicast burned at its source is cancelled at every KME it was sent to', async () => {
    const s = store();
    await s.addBlocks(OUT, blocks('out', 0, 9), 9);
    const cut = await s.takeOwnBlocks(OUT, 'kme-b', [
      {
        keyId: 'k1',
        sizeBits: 256,
        blockCount: 1,
        masterSae: 'sae-b1',
        pendingSlaves: ['sae-b2'],
        peerKme: 'kme-c',
        state: 'reserved',
      },
    ]);
    assert.ok(cut);
    await s.cancelReserved(['k1'], ['kme-d', 'kme-e']);
    assert.deepEqual((await s.listOutbox(10)).map((e) => [e.peerKme, e.keyIds]).sort(), [
      ['kme-c', ['k1']],
      ['kme-d', ['k1']],
      ['kme-e', ['k1']],
    ]);
    assert.deepEqual(await s.countKeys(), { reserved: 0, ready: 0 });
    await s.cancelReserved(['k1'], ['kme-d']);
    assert.equal((await s.listOutbox(10)).length, 3, 'nothing more for a key burned already');
  });
}
