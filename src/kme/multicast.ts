import { QksError } from '../domain/errors.js';
import { checkMandatoryExtensions } from '../domain/extensions.js';
import type { KeyRequest } from '../domain/key-request.js';
import { blocksPerKey } from '../domain/material.js';
import { multicastTree } from '../domain/multicast.js';
import type { SlavePlan } from '../domain/sae-directory.js';
import type { KeyRecord, NewKey } from '../stores/key-store.js';
import type { KeyServiceDeps } from './key-service.js';
import type { RelayLog } from './observability/relay-log.js';
import { allBranches, sendAnchorBranch, sendBranch } from './relay-forward.js';
import { macBlockCount, relayPath } from './relay.js';

/**
 * Whether a request's slaves need the key sent forward on a tree (relay-forward.ts): slaves at
 * several other KMEs, or at this one and at one reached only by relay.
 */
export function needsMulticast(d: KeyServiceDeps, plan: SlavePlan): boolean {
  if (plan.byKme.size > 1) return true;
  const direct = d.pools.some((p) => p.peerKme === plan.peerKme);
  return plan.peerKme !== null && plan.localSlaves.length > 0 && !direct;
}

/**
 * Cuts the keys from this KME's share of its link to the first branch and sends them on the tree
 * that reaches every slave's KME; returns them once every branch holds them. On any failure the
 * keys are burned and cancelled on every branch.
 */
export async function multicast(
  d: KeyServiceDeps,
  relays: RelayLog,
  master: string,
  plan: SlavePlan,
  request: KeyRequest,
): Promise<KeyRecord[]> {
  const needed = request.number * request.size;
  const paths = [...plan.byKme.keys()].map((kme) =>
    !d.network && d.pools.some((p) => p.peerKme === kme) ? [d.kmeId, kme] : relayPath(d, kme, needed),
  );
  const tree = multicastTree(d.kmeId, paths, plan.byKme);
  const [anchor, ...others] = tree.children as [(typeof tree.children)[0], ...typeof tree.children];
  const poolOf = (kme: string) => d.pools.find((p) => p.peerKme === kme)!;
  const anchorPool = poolOf(anchor.kme);
  checkMandatoryExtensions(request.extensionMandatory, { sourceKind: anchorPool.source.info().kind });
  for (const c of tree.children) await d.peers.ensureReachable(c.kme);
  // Enough on every first link before anything is cut: a short one would waste the others' pads.
  for (const c of tree.children) {
    const pool = poolOf(c.kme);
    const blocks = blocksPerKey(pool.ends.blockBits, request.size) * request.number;
    if ((await pool.ownBlocks()) < blocks + (c === anchor ? 0 : macBlockCount(pool.ends.blockBits))) {
      throw new QksError('NOT_ENOUGH_KEY_MATERIAL', `not enough key material on the link from ${d.kmeId} to ${c.kme}`);
    }
  }
  const wanted: NewKey[] = Array.from({ length: request.number }, () => ({
    keyId: d.newKeyId(),
    sizeBits: request.size,
    blockCount: blocksPerKey(anchorPool.ends.blockBits, request.size),
    masterSae: master,
    pendingSlaves: plan.localSlaves,
    peerKme: anchor.kme,
    state: 'reserved',
  }));
  const records = await d.store.takeOwnBlocks(anchorPool.linkId, d.kmeId, wanted);
  if (!records) throw new QksError('NOT_ENOUGH_KEY_MATERIAL', `not enough key material on the link to ${anchor.kme}`);
  const ids = records.map((r) => r.keyId);
  const keys = records.map((r) => ({
    keyId: r.keyId,
    size: r.sizeBits,
    key: d.barrier.openKey(r.linkId, r.blocks, r.sizeBits),
  }));
  try {
    const sent = allBranches([
      sendAnchorBranch(d, master, anchor, records),
      ...others.map((c) => sendBranch(d, [d.kmeId], master, c, keys)),
    ]);
    // One record per slave's KME, with its path, for the dashboard.
    const bits = records.reduce((sum, r) => sum + r.sizeBits, 0);
    await Promise.all(paths.map((path) => relays.track('source', path, records.length, () => sent, bits)));
  } catch (err) {
    await d.store.cancelReserved(
      ids,
      others.map((c) => c.kme),
    );
    throw err;
  } finally {
    for (const k of keys) k.key.fill(0);
  }
  await d.store.markDelivered(ids);
  return records;
}
