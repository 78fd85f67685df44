import { badRequest, QksError } from '../domain/errors.js';
import { blocksPerKey, ownerOfBlock } from '../domain/material.js';
import type { ReservationAnswer, ReservationMessage } from '../domain/peer-messages.js';
import { RELAY_MAC_KEY_BYTES, relayTag, relayTagValid, xor } from '../domain/relay-mac.js';
import { shortestPath, type LinkCost, type NetworkGraph } from '../domain/routes.js';
import type { SaeDirectory } from '../domain/sae-directory.js';
import type { Barrier } from '../stores/barrier.js';
import type { KeyStore, SealedBlock } from '../stores/key-store.js';
import type { PeerChannel } from './key-service.js';
import type { LinkPool } from './link-pool.js';
import { takePeerBlocks } from './peer-blocks.js';

/**
 * Trusted-node relay, hop by hop (ITU-T Y.3803), for keys between sites that share no link
 * (docs/network.md). The key is made last: the KME before the target cuts it from its own blocks
 * of their common link and reserves it there exactly as for a direct link. Every hop before that
 * has reserved blocks of its own link with the next KME; each answer goes back one hop as a mask,
 * the key XOR that hop's blocks (a one-time pad), under a one-time MAC keyed with more blocks of
 * the same link. So the master's KME gets the key only after the target holds it, every block of
 * every hop is used once, and a relaying KME keeps nothing of the key once it has answered.
 */
export interface RelayDeps {
  readonly kmeId: string;
  readonly directory: SaeDirectory;
  readonly store: KeyStore;
  readonly barrier: Barrier;
  readonly pools: readonly LinkPool[];
  readonly peers: PeerChannel;
  readonly network?: NetworkGraph;
  readonly linkCost?: (neededBits: number) => LinkCost;
  readonly blockWaitMs: number;
  /** A path an SDN controller installed to the target (installed-routes.ts): it wins over link state. */
  readonly installedPath?: (target: string) => readonly string[] | undefined;
}

/** Blocks of a link that key one hop's MAC. */
export const macBlockCount = (blockBits: number) => blocksPerKey(blockBits, RELAY_MAC_KEY_BYTES * 8);

/**
 * The path from this KME to `target` through trusted sites, cheapest for `neededBits` by the link
 * state; a clear error when there is none.
 */
export function relayPath(d: RelayDeps, target: string, neededBits: number, avoid?: string): string[] {
  const installed = avoid === undefined ? d.installedPath?.(target) : undefined;
  if (installed) return [...installed];
  if (!d.network) {
    throw badRequest(
      `the slave SAE is served by KME ${target}, which has no link to this KME (no network is configured for relay)`,
    );
  }
  const costs = (bits: number): LinkCost => {
    const cost = d.linkCost?.(bits) ?? (() => 1);
    return (link, from) => (link.id === avoid ? Infinity : cost(link, from));
  };
  const path = shortestPath(d.network, d.kmeId, target, costs(neededBits));
  if (path) return path;
  // Is it the material that is short, or are the links down?
  if (neededBits > 0 && shortestPath(d.network, d.kmeId, target, costs(0))) {
    throw new QksError(
      'NOT_ENOUGH_KEY_MATERIAL',
      `not enough key material on any path of trusted KMEs from ${d.kmeId} to ${target} for ${neededBits} bits`,
    );
  }
  throw new QksError('PEER_KME_UNAVAILABLE', `no path of trusted KMEs from ${d.kmeId} to ${target} with links up`);
}

/** Opens the MAC key a hop's blocks hold. */
export const openMacKey = (d: RelayDeps, linkId: string, blocks: readonly SealedBlock[]) =>
  d.barrier.openKey(linkId, blocks, RELAY_MAC_KEY_BYTES * 8);

/**
 * The first hop's answer, checked: each key's mask, in the order of `keyIds`. A missing mask or a
 * tag that does not verify is a failure of the relay (the keys are then burned and cancelled).
 */
export function checkAnswer(
  d: RelayDeps,
  from: string,
  linkId: string,
  mac: readonly SealedBlock[],
  keyIds: readonly string[],
  answer: ReservationAnswer,
): Buffer[] {
  const byId = new Map((answer.masks ?? []).map((m) => [m.key_ID, Buffer.from(m.mask, 'base64')]));
  const masks = keyIds.map((id) => byId.get(id));
  const key = openMacKey(d, linkId, mac);
  try {
    const complete = masks.every((m) => m !== undefined) && byId.size === keyIds.length;
    const pairs = keyIds.map((keyId, i) => ({ keyId, mask: masks[i] ?? Buffer.alloc(0) }));
    if (!complete || !answer.tag || !relayTagValid(key, pairs, Buffer.from(answer.tag, 'base64'))) {
      throw new QksError('PEER_KME_UNAVAILABLE', `the relay answer from KME ${from} failed its authentication`);
    }
    return masks as Buffer[];
  } finally {
    key.fill(0);
  }
}

/**
 * A relay reaching this KME from `fromKme`, when it is not the target: takes the previous hop's
 * blocks, reserves fresh blocks of the next link (the key itself when the next KME is the target),
 * and answers with the masks of the previous hop.
 */
export async function relayThrough(d: RelayDeps, fromKme: string, msg: ReservationMessage): Promise<ReservationAnswer> {
  const path = msg.relay!.path;
  const at = path.indexOf(d.kmeId);
  const next = path[at + 1]!;
  if (d.network?.untrusted.has(d.kmeId)) throw badRequest(`KME ${d.kmeId} is not a trusted node: it relays no keys`);
  if (!msg.relay!.mac_blocks) throw badRequest('a relay through this KME needs mac_blocks');
  const poolIn = d.pools.find((p) => p.linkId === msg.link_ID && p.peerKme === fromKme);
  const poolOut = d.pools.find((p) => p.peerKme === next);
  if (!poolIn) throw badRequest(`no link ${msg.link_ID} with KME ${fromKme}`);
  if (!poolOut) throw badRequest(`KME ${d.kmeId} has no link to ${next}, the next KME of the path`);
  for (const k of msg.keys) {
    if (k.blocks.length !== blocksPerKey(poolIn.ends.blockBits, k.size)) {
      throw badRequest(`key ${k.key_ID}: wrong number of blocks for its size`);
    }
  }
  const macIn = msg.relay!.mac_blocks;
  if (macIn.length !== macBlockCount(poolIn.ends.blockBits)) throw badRequest('wrong number of mac_blocks');
  if ([...msg.keys.flatMap((k) => k.blocks), ...macIn].some((seq) => ownerOfBlock(poolIn.ends, seq) !== fromKme)) {
    throw badRequest(`the relay names blocks that are not KME ${fromKme}'s to use`);
  }
  // Nothing is taken for a next KME known to be down.
  await d.peers.ensureReachable(next);
  const last = at + 1 === path.length - 1;
  const counts = msg.keys.map((k) => blocksPerKey(poolOut.ends.blockBits, k.size));
  const macCount = last ? 0 : macBlockCount(poolOut.ends.blockBits);
  // Both takes in one commit of the store (its writes of a turn are grouped): half the disk
  // syncs. A pad cut for a relay refused meanwhile is burned, never reused.
  const [taken, out] = await Promise.all([
    takeIn(d, poolIn, fromKme, msg, next),
    d.store.takeOwnPad(poolOut.linkId, d.kmeId, counts.reduce((a, b) => a + b, 0) + macCount),
  ]);
  const padsIn = msg.keys.map((k, i) => d.barrier.openKey(poolIn.linkId, taken.keys[i]!, k.size));
  const macKeyIn = openMacKey(d, poolIn.linkId, taken.mac);
  const keys: Buffer[] = [];
  try {
    if (!out)
      throw new QksError('NOT_ENOUGH_KEY_MATERIAL', `not enough key material on the link from ${d.kmeId} to ${next}`);
    let cursor = 0;
    const outKeys = counts.map((n) => out.slice(cursor, (cursor += n)));
    const outMac = out.slice(cursor);
    const answer = await d.peers.reserve(next, {
      link_ID: poolOut.linkId,
      master_SAE_ID: msg.master_SAE_ID,
      slave_SAE_IDs: msg.slave_SAE_IDs,
      keys: msg.keys.map((k, i) => ({ key_ID: k.key_ID, size: k.size, blocks: outKeys[i]!.map((b) => b.seq) })),
      relay: { path, ...(last ? {} : { mac_blocks: outMac.map((b) => b.seq) }) },
    });
    const ids = msg.keys.map((k) => k.key_ID);
    const masksOut = last ? null : checkAnswer(d, next, poolOut.linkId, outMac, ids, answer);
    msg.keys.forEach((k, i) => {
      const material = d.barrier.openKey(poolOut.linkId, outKeys[i]!, k.size);
      keys.push(masksOut ? xor(masksOut[i]!, material) : material);
      if (masksOut) material.fill(0);
    });
    const masks = msg.keys.map((k, i) => ({ keyId: k.key_ID, mask: xor(keys[i]!, padsIn[i]!) }));
    const tag = relayTag(macKeyIn, masks);
    return {
      masks: masks.map((m) => ({ key_ID: m.keyId, mask: m.mask.toString('base64') })),
      tag: tag.toString('base64'),
    };
  } finally {
    // A trusted node keeps nothing of what it relayed.
    for (const b of [...padsIn, ...keys, macKeyIn]) b.fill(0);
  }
}

/** Takes the previous hop's blocks, waiting a moment for blocks the link has not delivered here yet. */
function takeIn(d: RelayDeps, pool: LinkPool, fromKme: string, msg: ReservationMessage, next: string) {
  const keys = msg.keys.map((k) => ({ keyId: k.key_ID, sizeBits: k.size, seqs: k.blocks }));
  const mac = msg.relay!.mac_blocks!;
  return takePeerBlocks(pool, d.blockWaitMs, () => d.store.relayIn(pool.linkId, fromKme, keys, mac, [next]));
}
