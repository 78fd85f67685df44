import { badRequest, QksError } from '../domain/errors.js';
import { blocksPerKey, ownerOfBlock } from '../domain/material.js';
import { slavesIn, type Branch } from '../domain/multicast.js';
import type { ReservationMessage } from '../domain/peer-messages.js';
import { relayTag, relayTagValid, xor } from '../domain/relay-mac.js';
import type { SealedBlock } from '../stores/key-store.js';
import { takePeerBlocks } from './peer-blocks.js';
import { macBlockCount, openMacKey, type RelayDeps } from './relay.js';

/**
 * Multicast across sites (docs/network.md): the source's KME fixes each key (its own blocks of
 * one link) and sends it forward on a tree of trusted KMEs. On every hop but that first one the
 * key travels as a mask, the key XOR fresh blocks of that hop's link (a one-time pad), under a
 * one-time MAC keyed with more of them; each KME keeps it for its own slaves (blocks and mask,
 * never the key) and sends it on to its children. An answer comes back once the whole branch
 * holds the keys, so the master gets them only then, as for any relay.
 */
export interface ForwardKey {
  readonly keyId: string;
  readonly size: number;
  /** The key itself: wiped by whoever made it, once the branches have answered. */
  readonly key: Buffer;
}

/** The message that sends `child` its branch, from the end of `path`. */
function branchMessage(
  path: readonly string[],
  master: string,
  linkId: string,
  child: Branch,
  keys: ReservationMessage['keys'],
  auth: { mac: readonly SealedBlock[]; tag: Buffer } | null,
): ReservationMessage {
  return {
    link_ID: linkId,
    master_SAE_ID: master,
    slave_SAE_IDs: slavesIn(child),
    keys,
    relay: {
      path: [...path, child.kme],
      tree: { slaves: child.slaves, children: child.children },
      ...(auth ? { mac_blocks: auth.mac.map((b) => b.seq), tag: auth.tag.toString('base64') } : {}),
    },
  };
}

/**
 * The branch whose link the keys were cut from: its blocks are the keys, so they go as they are
 * (like a direct reservation), with no mask and no MAC.
 */
export async function sendAnchorBranch(
  d: RelayDeps,
  master: string,
  child: Branch,
  keys: ReadonlyArray<{ keyId: string; sizeBits: number; linkId: string; blocks: readonly SealedBlock[] }>,
): Promise<void> {
  const wire = keys.map((k) => ({ key_ID: k.keyId, size: k.sizeBits, blocks: k.blocks.map((b) => b.seq) }));
  await d.peers.reserve(child.kme, branchMessage([d.kmeId], master, keys[0]!.linkId, child, wire, null));
}

/** Sends keys on to `child`, a neighbour, masked with fresh blocks of this KME's share of their link. */
export async function sendBranch(
  d: RelayDeps,
  path: readonly string[],
  master: string,
  child: Branch,
  keys: readonly ForwardKey[],
): Promise<void> {
  const pool = d.pools.find((p) => p.peerKme === child.kme);
  if (!pool) throw badRequest(`KME ${d.kmeId} has no link to ${child.kme}`);
  // Nothing is cut for a KME known to be down.
  await d.peers.ensureReachable(child.kme);
  const counts = keys.map((k) => blocksPerKey(pool.ends.blockBits, k.size));
  const macCount = macBlockCount(pool.ends.blockBits);
  const pad = await d.store.takeOwnPad(pool.linkId, d.kmeId, counts.reduce((a, b) => a + b, 0) + macCount);
  if (!pad) {
    throw new QksError(
      'NOT_ENOUGH_KEY_MATERIAL',
      `not enough key material on the link from ${d.kmeId} to ${child.kme}`,
    );
  }
  let cursor = 0;
  const pads = counts.map((n) => pad.slice(cursor, (cursor += n)));
  const mac = pad.slice(cursor);
  const masks = keys.map((k, i) => {
    const material = d.barrier.openKey(pool.linkId, pads[i]!, k.size);
    const mask = xor(k.key, material);
    material.fill(0);
    return { keyId: k.keyId, mask };
  });
  const macKey = openMacKey(d, pool.linkId, mac);
  const tag = relayTag(macKey, masks);
  macKey.fill(0);
  const wire = keys.map((k, i) => ({
    key_ID: k.keyId,
    size: k.size,
    blocks: pads[i]!.map((b) => b.seq),
    mask: masks[i]!.mask.toString('base64'),
  }));
  await d.peers.reserve(child.kme, branchMessage(path, master, pool.linkId, child, wire, { mac, tag }));
}

/** Runs every branch to its end; fails with the first failure, once all have answered. */
export async function allBranches(sends: ReadonlyArray<Promise<void>>): Promise<void> {
  const results = await Promise.allSettled(sends);
  const failed = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
  if (failed) throw failed.reason;
}

/**
 * A multicast branch reaching this KME from `fromKme`: takes the previous hop's blocks (keeping
 * the keys, with their masks, for this KME's slaves), recovers each key, and sends it on to every
 * child. The key leaves this KME's memory once the children have answered.
 */
export async function forwardThrough(d: RelayDeps, fromKme: string, msg: ReservationMessage): Promise<void> {
  const { path, tree, tag } = msg.relay!;
  const children = tree!.children;
  if (path.at(-1) !== d.kmeId) throw badRequest(`a multicast branch for ${path.at(-1)} reached KME ${d.kmeId}`);
  if (tree!.slaves.some((s) => d.directory.kmeOf.get(s) !== d.kmeId)) {
    throw badRequest(`relay.tree names slaves that KME ${d.kmeId} does not serve`);
  }
  if (children.length > 0 && d.network?.untrusted.has(d.kmeId)) {
    throw badRequest(`KME ${d.kmeId} is not a trusted node: it relays no keys`);
  }
  if (tree!.slaves.length === 0 && children.length === 0) throw badRequest('a multicast branch that leads nowhere');
  const kmes = children.map((c) => c.kme);
  if (kmes.some((k, i) => path.includes(k) || kmes.indexOf(k) !== i || !d.pools.some((p) => p.peerKme === k))) {
    throw badRequest(`relay.tree children must be distinct neighbours of KME ${d.kmeId} off the path`);
  }
  const poolIn = d.pools.find((p) => p.linkId === msg.link_ID && p.peerKme === fromKme);
  if (!poolIn) throw badRequest(`no link ${msg.link_ID} with KME ${fromKme}`);
  const masked = msg.keys.filter((k) => k.mask !== undefined).length;
  const macSeqs = msg.relay!.mac_blocks ?? [];
  if (masked === 0 ? macSeqs.length > 0 || tag : masked < msg.keys.length || !tag) {
    throw badRequest('masks come with every key, relay.mac_blocks and relay.tag, or not at all');
  }
  if (masked > 0 && macSeqs.length !== macBlockCount(poolIn.ends.blockBits))
    throw badRequest('wrong number of mac_blocks');
  for (const k of msg.keys) {
    if (k.blocks.length !== blocksPerKey(poolIn.ends.blockBits, k.size)) {
      throw badRequest(`key ${k.key_ID}: wrong number of blocks for its size`);
    }
    if (k.mask !== undefined && Buffer.from(k.mask, 'base64').length !== k.size / 8) {
      throw badRequest(`key ${k.key_ID}: its mask is not ${k.size} bits`);
    }
  }
  if ([...msg.keys.flatMap((k) => k.blocks), ...macSeqs].some((seq) => ownerOfBlock(poolIn.ends, seq) !== fromKme)) {
    throw badRequest(`the relay names blocks that are not KME ${fromKme}'s to use`);
  }
  for (const k of kmes) await d.peers.ensureReachable(k);

  const relayed = msg.keys.map((k) => ({
    keyId: k.key_ID,
    sizeBits: k.size,
    seqs: k.blocks,
    ...(k.mask === undefined ? {} : { mask: Buffer.from(k.mask, 'base64') }),
  }));
  const keep = tree!.slaves.length > 0 ? { masterSae: msg.master_SAE_ID, pendingSlaves: tree!.slaves } : undefined;
  const taken = await takePeerBlocks(poolIn, d.blockWaitMs, () =>
    d.store.relayIn(poolIn.linkId, fromKme, relayed, macSeqs, kmes, keep),
  );
  const ids = msg.keys.map((k) => k.key_ID);
  const keys = relayed.map((k, i) => {
    const material = d.barrier.openKey(poolIn.linkId, taken.keys[i]!, k.sizeBits);
    if (!k.mask) return { keyId: k.keyId, size: k.sizeBits, key: material };
    const key = xor(material, k.mask);
    material.fill(0);
    return { keyId: k.keyId, size: k.sizeBits, key };
  });
  try {
    if (masked > 0) {
      const macKey = openMacKey(d, poolIn.linkId, taken.mac);
      const masks = relayed.map((k) => ({ keyId: k.keyId, mask: k.mask! }));
      const valid = relayTagValid(macKey, masks, Buffer.from(tag!, 'base64'));
      macKey.fill(0);
      if (!valid) {
        // What was kept goes, as if the previous hop had cancelled it.
        await d.store.cancelKeys(ids, fromKme);
        throw new QksError(
          'PEER_KME_UNAVAILABLE',
          `the multicast branch from KME ${fromKme} failed its authentication`,
        );
      }
    }
    await allBranches(children.map((c) => sendBranch(d, path, msg.master_SAE_ID, c, keys)));
  } finally {
    for (const k of keys) k.key.fill(0);
  }
}
