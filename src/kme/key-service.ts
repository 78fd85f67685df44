import { badRequest, QksError } from '../domain/errors.js';
import { checkMandatoryExtensions } from '../domain/extensions.js';
import { requireEntityId } from '../domain/ids.js';
import type { KeyRequest } from '../domain/key-request.js';
import type { KeyLimits } from '../domain/limits.js';
import { blocksPerKey, keysFromBlocks, ownerOfBlock } from '../domain/material.js';
import type { ReservationAnswer, ReservationMessage } from '../domain/peer-messages.js';
import type { LinkCost, NetworkGraph } from '../domain/routes.js';
import { xor } from '../domain/relay-mac.js';
import { checkAnswer, macBlockCount, relayPath, relayThrough } from './relay.js';
import { forwardThrough } from './relay-forward.js';
import { multicast, needsMulticast } from './multicast.js';
import { planSlaves, requireLocalSae, type SaeDirectory, type SlavePlan } from '../domain/sae-directory.js';
import type { Barrier } from '../stores/barrier.js';
import type { ClaimedKey, KeyRecord, KeyStore, NewKey, SealedBlock } from '../stores/key-store.js';
import type { LinkPool } from './link-pool.js';
import type { KeyContainer, KeyStatus } from '../domain/etsi-messages.js';
import { DeliveryLog } from './observability/delivery-log.js';
import { RelayLog } from './observability/relay-log.js';
import { takePeerBlocks } from './peer-blocks.js';
import { RequestNotSent } from './peer-stream/connection.js';

export type { KeyContainer, KeyStatus };

/**
 * How this KME reaches its peers; fails with PEER_KME_UNAVAILABLE, as a RequestNotSent when the
 * peer certainly never got the reservation.
 */
export interface PeerChannel {
  /** Resolves with the peer's answer: empty for a direct link, the masks of a relay hop. */
  reserve(peerKme: string, message: ReservationMessage): Promise<ReservationAnswer>;
  /** Fails at once while the peer is known to be down (until a probe finds it back). */
  ensureReachable(peerKme: string): Promise<void>;
}

export interface KeyServiceDeps {
  readonly kmeId: string;
  readonly limits: KeyLimits;
  readonly directory: SaeDirectory;
  readonly store: KeyStore;
  readonly barrier: Barrier;
  readonly pools: readonly LinkPool[];
  readonly peers: PeerChannel;
  readonly newKeyId: () => string;
  /** How long a peer's reservation may wait for blocks this KME has not received yet. */
  readonly blockWaitMs: number;
  /** The whole network, for keys relayed to sites without a common link. */
  readonly network?: NetworkGraph;
  /** What sending so many bits over a link costs now (link state); hop count without it. */
  readonly linkCost?: (neededBits: number) => LinkCost;
  /** What a KME last advertised it holds of its link to another (link state), bits. */
  readonly advertisedBits?: (from: string, peer: string) => number | undefined;
  /** A path an SDN controller installed to a KME (installed-routes.ts): it wins over link state. */
  readonly installedPath?: (target: string) => readonly string[] | undefined;
}

/**
 * The key delivery rules, over a store, the link pools and the peer channel. A master's keys are
 * cut from this KME's share of a link; when slaves sit at the peer, the peer records the same keys
 * before the master sees them, so a key the master holds is always there for its slaves.
 */
export class KeyService {
  readonly #d: KeyServiceDeps;
  /** Keys handed out since start: to masters (enc_keys) and to slaves (dec_keys). */
  readonly delivered = { toMasters: 0, toSlaves: 0 };
  /** The latest deliveries of each SAE, for the dashboard: key IDs (shortened), never key bytes. */
  readonly deliveries = new DeliveryLog();
  /** Relays started here or passing through: counts and the latest paths. */
  readonly relays = new RelayLog();

  constructor(deps: KeyServiceDeps) {
    this.#d = deps;
  }

  #poolFor(peerKme: string | null): LinkPool {
    const pool = peerKme === null ? this.#d.pools[0] : this.#d.pools.find((p) => p.peerKme === peerKme);
    if (!pool) {
      throw peerKme === null
        ? new QksError('NOT_ENOUGH_KEY_MATERIAL', 'this KME has no key source')
        : badRequest(`the slave SAE is served by KME ${peerKme}, which has no link to this KME`);
    }
    return pool;
  }

  /**
   * The first hop of keys for `peerKme`: its own link, or the link to the next KME of a relay
   * path when there is no common link (then with the whole path). `avoid`: a common link that cannot
   * serve now (empty, or its peer channel down), to go round through the network.
   */
  #route(
    peerKme: string | null,
    neededBits: number,
    avoid?: string,
  ): { pool: LinkPool; next: string | null; path: string[] | null } {
    const installed = peerKme !== null && !avoid ? this.#d.installedPath?.(peerKme) : undefined;
    if (installed && installed.length > 2)
      return { pool: this.#poolFor(installed[1]!), next: installed[1]!, path: [...installed] };
    if (!avoid && (peerKme === null || this.#d.pools.some((p) => p.peerKme === peerKme))) {
      return { pool: this.#poolFor(peerKme), next: peerKme, path: null };
    }
    const path = relayPath(this.#d, peerKme!, neededBits, avoid);
    return { pool: this.#poolFor(path[1]!), next: path[1]!, path };
  }

  /**
   * Keys of key_size a request could get now: this KME's share of the first link, and on a relay
   * path no more than each later hop's KME last advertised of its share of the next link.
   */
  async #obtainable(pool: LinkPool, path: string[] | null): Promise<number> {
    const { limits } = this.#d;
    let keys = keysFromBlocks(pool.ends.blockBits, limits.keySize, await pool.ownBlocks());
    for (let i = 1; path && i < path.length - 1; i++) {
      const bits = this.#d.advertisedBits?.(path[i]!, path[i + 1]!);
      if (bits !== undefined) keys = Math.min(keys, Math.floor(bits / limits.keySize));
    }
    return keys;
  }

  async status(master: string, slaveParam: string): Promise<KeyStatus> {
    const { kmeId, directory, limits } = this.#d;
    requireLocalSae(directory, kmeId, master);
    const slave = requireEntityId(slaveParam, 'slave_SAE_ID');
    const plan = planSlaves(directory, kmeId, master, [slave]);
    // The path a request of one key would take; if none holds that much, any with its links up
    // (what it holds is the count, even none).
    let route;
    try {
      route = this.#route(plan.peerKme, limits.keySize);
    } catch (err) {
      if (!(err instanceof QksError) || err.code !== 'NOT_ENOUGH_KEY_MATERIAL') throw err;
      route = this.#route(plan.peerKme, 0);
    }
    // A common link that holds no key now is gone round, as a request would.
    if (
      route.path === null &&
      route.next !== null &&
      this.#d.network &&
      (await this.#obtainable(route.pool, null)) === 0
    ) {
      route = this.#tryRoute(plan.peerKme, limits.keySize, route.pool.linkId) ?? route;
    }
    const { pool, path } = route;
    const blockBits = pool.ends.blockBits;
    return {
      source_KME_ID: kmeId,
      target_KME_ID: plan.peerKme ?? kmeId,
      master_SAE_ID: master,
      slave_SAE_ID: slave,
      key_size: limits.keySize,
      stored_key_count: await this.#obtainable(pool, path),
      max_key_count: keysFromBlocks(blockBits, limits.keySize, pool.capacityBlocks),
      max_key_per_request: limits.maxKeyPerRequest,
      max_key_size: limits.maxKeySize,
      min_key_size: limits.minKeySize,
      max_SAE_ID_count: limits.maxSaeIdCount,
      status_extension: {
        qks_link_ID: pool.linkId,
        qks_key_source: pool.source.info().kind,
        ...(path ? { qks_relay_path: path } : {}),
      },
    };
  }

  async getKeys(master: string, slaveParam: string, request: KeyRequest): Promise<KeyContainer> {
    const { kmeId, directory, store } = this.#d;
    requireLocalSae(directory, kmeId, master);
    const slave = requireEntityId(slaveParam, 'slave_SAE_ID');
    const plan = planSlaves(directory, kmeId, master, [slave, ...request.additionalSlaveSaeIds]);
    if (needsMulticast(this.#d, plan)) {
      const records = await multicast(this.#d, this.relays, master, plan, request);
      this.#recordToMaster(master, [slave, ...request.additionalSlaveSaeIds], request.size, records);
      return this.#container(records);
    }
    const needed = request.number * request.size;
    let route = this.#route(plan.peerKme, needed);
    let macPad: Promise<SealedBlock[] | null> = Promise.resolve([]);
    const records = await this.#cut(master, plan, request, route, (p) => (macPad = p)).catch(async (err: unknown) => {
      // A common link that cannot serve now (no material, or its channel down) is gone round,
      // through the network, when a path exists; otherwise its own error stands.
      const detour =
        route.path === null &&
        route.next !== null &&
        plan.localSlaves.length === 0 &&
        this.#d.network &&
        isDetourable(err)
          ? this.#tryRoute(plan.peerKme, needed, route.pool.linkId)
          : null;
      if (!detour) throw err;
      route = detour;
      return this.#cut(master, plan, request, route, (p) => (macPad = p));
    });
    const { pool, next, path } = route;
    const ids = records.map((r) => r.keyId);
    if (records.some((r) => r.blocks.some((b) => ownerOfBlock(pool.ends, b.seq) !== kmeId))) {
      // The store's owner column is not sealed: a peer's block moved into our share is burned, not cut.
      await store.cancelKeys(ids, kmeId);
      throw new QksError('KEY_DATA_ACCESS_ERROR', 'the key store holds a block of the peer among this KME’s own');
    }
    let masks: Buffer[] | null = null;
    if (next !== null) {
      // A relay's first hop also keys the MAC of its answer, with blocks of its own (cut with the
      // keys: the store commits both at once).
      const mac = await macPad;
      if (!mac) {
        // Never sent: the keys' blocks go back.
        await store.returnReserved(ids);
        throw new QksError('NOT_ENOUGH_KEY_MATERIAL', 'not enough key material for the relay’s MAC key');
      }
      const reserve = async () => {
        const answer = await this.#d.peers.reserve(next, {
          link_ID: pool.linkId,
          master_SAE_ID: master,
          slave_SAE_IDs: plan.remoteSlaves,
          keys: records.map((r) => ({ key_ID: r.keyId, size: r.sizeBits, blocks: r.blocks.map((b) => b.seq) })),
          ...(path ? { relay: { path, mac_blocks: mac.map((b) => b.seq) } } : {}),
        });
        if (path) masks = checkAnswer(this.#d, next, pool.linkId, mac, ids, answer);
      };
      try {
        const bits = records.reduce((sum, r) => sum + r.sizeBits, 0);
        await (path ? this.relays.track('source', path, records.length, reserve, bits) : reserve());
      } catch (err) {
        // Never sent: the peer cannot hold these keys, so their blocks go back to the pool. Otherwise
        // the peer may have recorded them: they are burned (and cancelled there), never reused.
        if (err instanceof RequestNotSent) await store.returnReserved(ids);
        else await store.cancelReserved(ids);
        throw err;
      }
      await store.markDelivered(ids);
    }
    this.#recordToMaster(master, [slave, ...request.additionalSlaveSaeIds], request.size, records);
    return this.#container(records, masks);
  }

  #recordToMaster(master: string, slaves: string[], sizeBits: number, records: readonly KeyRecord[]): void {
    this.delivered.toMasters += records.length;
    this.deliveries.record({
      at: Date.now(),
      sae: master,
      role: 'master',
      peers: slaves,
      number: records.length,
      sizeBits,
      keyIds: records.map((r) => r.keyId),
    });
  }

  /** A route that exists, or null. */
  #tryRoute(peerKme: string | null, neededBits: number, avoid: string) {
    try {
      return this.#route(peerKme, neededBits, avoid);
    } catch {
      return null;
    }
  }

  /** Cuts the request's keys from this KME's share of the route's first link; fails before cutting anything. */
  async #cut(
    master: string,
    plan: SlavePlan,
    request: KeyRequest,
    { pool, next, path }: { pool: LinkPool; next: string | null; path: string[] | null },
    /** Told of the relay's MAC pad, cut beside the keys. */
    onMacPad: (pad: Promise<SealedBlock[] | null>) => void,
  ): Promise<KeyRecord[]> {
    const { kmeId, store } = this.#d;
    checkMandatoryExtensions(request.extensionMandatory, { sourceKind: pool.source.info().kind });
    // No material is cut for a peer known to be down: SAE retries must not drain the pool.
    if (next !== null) await this.#d.peers.ensureReachable(next);
    const blockCount = blocksPerKey(pool.ends.blockBits, request.size);
    const wanted: NewKey[] = Array.from({ length: request.number }, () => ({
      keyId: this.#d.newKeyId(),
      sizeBits: request.size,
      blockCount,
      masterSae: master,
      pendingSlaves: plan.localSlaves,
      peerKme: next,
      state: next === null ? 'ready' : 'reserved',
    }));
    if (path) {
      // Cut in the same commit as the keys, when there is enough for both (none is wasted otherwise).
      const macCount = macBlockCount(pool.ends.blockBits);
      const enough = (await pool.ownBlocks()) >= blockCount * request.number + macCount;
      const pad = enough ? store.takeOwnPad(pool.linkId, kmeId, macCount) : Promise.resolve(null);
      pad.catch(() => undefined); // awaited later, unless the cut fails first
      onMacPad(pad);
    }
    const records = await store.takeOwnBlocks(pool.linkId, kmeId, wanted);
    if (!records) {
      const available = keysFromBlocks(pool.ends.blockBits, request.size, await pool.ownBlocks());
      throw new QksError(
        'NOT_ENOUGH_KEY_MATERIAL',
        `not enough key material: ${request.number} keys of ${request.size} bits requested, ${available} available`,
      );
    }
    return records;
  }

  async getKeysWithIds(slave: string, masterParam: string, keyIds: readonly string[]): Promise<KeyContainer> {
    const { kmeId, directory, store } = this.#d;
    requireLocalSae(directory, kmeId, slave);
    const master = requireEntityId(masterParam, 'master_SAE_ID');
    if (!directory.kmeOf.has(master)) throw badRequest(`unknown SAE ID: ${master}`);
    const result = await store.takeForSlave(master, slave, keyIds);
    if (!result.ok) {
      // The 401's body says only "unauthorized"; this message is for the log.
      throw result.reason === 'unauthorized'
        ? new QksError('UNAUTHORIZED', `${slave} is not a slave named when the keys were requested`)
        : new QksError('KEYS_NOT_FOUND');
    }
    this.delivered.toSlaves += result.keys.length;
    this.deliveries.record({
      at: Date.now(),
      sae: slave,
      role: 'slave',
      peers: [master],
      number: result.keys.length,
      sizeBits: result.keys[0]?.sizeBits ?? 0,
      keyIds: result.keys.map((k) => k.keyId),
    });
    return this.#container(result.keys);
  }

  /**
   * The peer cut keys from its share of our common link: take the same blocks here. In a relay
   * (docs/network.md) the master is served at the path's first KME and the slaves at its last; a
   * KME in between passes the keys on and answers with their masks.
   */
  async acceptReservation(fromKme: string, msg: ReservationMessage): Promise<ReservationAnswer> {
    const { directory, limits, store, kmeId } = this.#d;
    const path = msg.relay?.path;
    const at = path ? path.indexOf(kmeId) : 1;
    if (path && (at < 1 || path[at - 1] !== fromKme)) {
      throw badRequest(`the relay path ${path.join(' > ')} does not lead from KME ${fromKme} to this KME`);
    }
    const source = path ? path[0]! : fromKme;
    const target = path ? path.at(-1)! : kmeId;
    if (directory.kmeOf.get(msg.master_SAE_ID) !== source) {
      throw badRequest(`master SAE ${msg.master_SAE_ID} is not served by KME ${source}`);
    }
    for (const k of msg.keys) {
      const sizeOk = k.size % 8 === 0 && k.size >= limits.minKeySize && k.size <= limits.maxKeySize;
      if (!sizeOk) throw badRequest(`key ${k.key_ID}: size ${k.size} is outside this KME's limits`);
    }
    const bits = msg.keys.reduce((sum, k) => sum + k.size, 0);
    if (msg.relay?.tree) {
      await this.relays.track('through', path!, msg.keys.length, () => forwardThrough(this.#d, fromKme, msg), bits);
      return {};
    }
    if (msg.slave_SAE_IDs.some((s) => directory.kmeOf.get(s) !== target)) {
      throw badRequest(`every slave SAE must be served by KME ${target}`);
    }
    if (target !== kmeId)
      return this.relays.track('through', path!, msg.keys.length, () => relayThrough(this.#d, fromKme, msg), bits);
    if (msg.relay?.mac_blocks) throw badRequest('the last hop of a relay takes no mac_blocks');
    const pool = this.#d.pools.find((p) => p.linkId === msg.link_ID && p.peerKme === fromKme);
    if (!pool) throw badRequest(`no link ${msg.link_ID} with KME ${fromKme}`);
    const claimed: ClaimedKey[] = msg.keys.map((k) => {
      if (k.blocks.length !== blocksPerKey(pool.ends.blockBits, k.size)) {
        throw badRequest(`key ${k.key_ID}: wrong number of blocks for its size`);
      }
      if (k.blocks.some((seq) => ownerOfBlock(pool.ends, seq) !== fromKme)) {
        throw badRequest(`key ${k.key_ID}: names blocks that are not KME ${fromKme}'s to use`);
      }
      return {
        keyId: k.key_ID,
        sizeBits: k.size,
        seqs: k.blocks,
        masterSae: msg.master_SAE_ID,
        pendingSlaves: msg.slave_SAE_IDs,
      };
    });
    await takePeerBlocks(pool, this.#d.blockWaitMs, () => store.claimBlocks(pool.linkId, fromKme, claimed));
    return {};
  }

  /** A peer cancels keys it cut and burned; it may not touch keys another KME cut. */
  async acceptCancel(fromKme: string, keyIds: readonly string[]): Promise<number> {
    const result = await this.#d.store.cancelKeys(keyIds, fromKme);
    if (!result.ok) {
      throw badRequest(
        `KME ${fromKme} may cancel only keys it reserved; not: ${result.notTheirs.slice(0, 8).join(', ')}`,
      );
    }
    return result.removed;
  }

  /** Keys as the SAE gets them; a relayed key is its first hop's blocks XOR the mask that came back. */
  #container(records: readonly KeyRecord[], masks: readonly Buffer[] | null = null): KeyContainer {
    const { barrier } = this.#d;
    return {
      keys: records.map((r, i) => {
        const blocks = barrier.openKey(r.linkId, r.blocks, r.sizeBits);
        const mask = masks?.[i] ?? r.mask;
        const key = mask ? xor(blocks, mask) : blocks;
        if (mask) blocks.fill(0);
        const encoded = key.toString('base64');
        key.fill(0);
        return { key_ID: r.keyId, key: encoded };
      }),
    };
  }
}

/** Failures before anything was cut that another path might not have: no material, the peer unreachable. */
const isDetourable = (err: unknown) =>
  err instanceof QksError && (err.code === 'NOT_ENOUGH_KEY_MATERIAL' || err.code === 'PEER_KME_UNAVAILABLE');
