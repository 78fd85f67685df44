import type {
  CancelResult,
  ClaimedKey,
  ClaimResult,
  IncomingBlock,
  KeptRelay,
  KeyCounts,
  KeyRecord,
  KeyStore,
  NewKey,
  OutboxEntry,
  RelayedKey,
  RelayInResult,
  SealedBlock,
  SlaveTakeResult,
} from './key-store.js';
import { MAX_REMEMBERED_CANCELS, shareKey } from './key-store.js';
import { ReservedCuts, type ReturnPlan } from './reserved-cuts.js';

/** A record with the KME that cut it (the owner of its blocks). */
type StoredKey = KeyRecord & { readonly cutBy: string };

/**
 * A store in process memory: for tests and throw-away runs only. Nothing survives a restart, so a
 * KME on it cannot keep its promises across crashes; `qks kme` warns when it is chosen.
 */
export class MemoryKeyStore implements KeyStore {
  // link → owner → seq → block (Map keeps insertion order; blocks arrive in sequence order)
  readonly #blocks = new Map<string, Map<string, Map<number, SealedBlock>>>();
  readonly #lastSeq = new Map<string, number>();
  readonly #keys = new Map<string, StoredKey>();
  /** Cancelled key IDs by the KME that cancelled them, oldest first, with when. */
  readonly #cancelled = new Map<string, Map<string, number>>();
  /** Per link and owner: the highest block number consumed (cut or discarded); never added again. */
  readonly #marks = new Map<string, number>();
  /** Reserved cuts still out, for `returnReserved`. */
  readonly #cuts = new ReservedCuts();
  readonly #markOfShare = (share: string): number => this.#marks.get(share) ?? -1;
  readonly #outbox: OutboxEntry[] = [];
  readonly #prefs = new Map<string, Record<string, unknown>>();
  /** Keys relayed through this KME: from which KME, to which, since when. */
  readonly #relayed = new Map<string, { prev: string; next: readonly string[]; at: number }>();
  #nextOutboxId = 1;

  #pool(linkId: string, owner: string): Map<number, SealedBlock> {
    let byOwner = this.#blocks.get(linkId);
    if (!byOwner) this.#blocks.set(linkId, (byOwner = new Map()));
    let pool = byOwner.get(owner);
    if (!pool) byOwner.set(owner, (pool = new Map()));
    return pool;
  }

  #mark(linkId: string, owner: string): number {
    return this.#marks.get(shareKey(linkId, owner)) ?? -1;
  }

  #setMark(linkId: string, owner: string, seq: number): void {
    this.#marks.set(shareKey(linkId, owner), Math.max(seq, this.#mark(linkId, owner)));
  }

  async addBlocks(linkId: string, blocks: readonly IncomingBlock[], lastSeq: number): Promise<void> {
    for (const b of [...blocks].sort((x, y) => x.seq - y.seq)) {
      const pool = this.#pool(linkId, b.owner);
      if (!pool.has(b.seq) && b.seq > this.#mark(linkId, b.owner)) pool.set(b.seq, { seq: b.seq, sealed: b.sealed });
    }
    this.#lastSeq.set(linkId, Math.max(lastSeq, this.#lastSeq.get(linkId) ?? -1));
  }

  async lastSeq(linkId: string): Promise<number | null> {
    return this.#lastSeq.get(linkId) ?? null;
  }

  async countBlocks(linkId: string, owner: string): Promise<number> {
    return this.#pool(linkId, owner).size;
  }

  async discardBlocksBefore(linkId: string, owner: string, seq: number): Promise<number> {
    const pool = this.#pool(linkId, owner);
    const old = [...pool.keys()].filter((s) => s < seq);
    for (const s of old) pool.delete(s);
    this.#setMark(linkId, owner, seq - 1);
    return old.length;
  }

  async takeOwnBlocks(linkId: string, owner: string, keys: readonly NewKey[]): Promise<KeyRecord[] | null> {
    const pool = this.#pool(linkId, owner);
    const needed = keys.reduce((sum, k) => sum + k.blockCount, 0);
    if (pool.size < needed || keys.some((k) => this.#keys.has(k.keyId))) return null;
    const oldest = [...pool.keys()].sort((a, b) => a - b).slice(0, needed);
    const markBefore = this.#mark(linkId, owner);
    if (oldest.length > 0) this.#setMark(linkId, owner, oldest.at(-1)!);
    const records: KeyRecord[] = [];
    let next = 0;
    for (const k of keys) {
      const seqs = oldest.slice(next, (next += k.blockCount));
      const record: StoredKey = {
        cutBy: owner,
        keyId: k.keyId,
        linkId,
        sizeBits: k.sizeBits,
        blocks: seqs.map((s) => pool.get(s)!),
        masterSae: k.masterSae,
        pendingSlaves: [...k.pendingSlaves],
        deliveredSlaves: [],
        peerKme: k.peerKme,
        state: k.state,
        createdAt: Date.now(),
      };
      for (const s of seqs) pool.delete(s);
      this.#keys.set(k.keyId, record);
      records.push(record);
    }
    if (oldest.length > 0 && keys.every((k) => k.state === 'reserved'))
      this.#cuts.add(
        shareKey(linkId, owner),
        keys.map((k) => k.keyId),
        markBefore,
        oldest.at(-1)!,
      );
    return records;
  }

  async claimBlocks(linkId: string, owner: string, keys: readonly ClaimedKey[]): Promise<ClaimResult> {
    const pool = this.#pool(linkId, owner);
    const allSeqs = keys.flatMap((k) => k.seqs);
    const missingSeqs = allSeqs.filter((s) => !pool.has(s));
    const cancelled = this.#cancelled.get(owner);
    const existingKeyIds = keys.map((k) => k.keyId).filter((id) => this.#keys.has(id) || cancelled?.has(id));
    if (missingSeqs.length > 0 || existingKeyIds.length > 0 || new Set(allSeqs).size !== allSeqs.length) {
      return { ok: false, missingSeqs, existingKeyIds };
    }
    for (const k of keys) {
      this.#keys.set(k.keyId, {
        cutBy: owner,
        keyId: k.keyId,
        linkId,
        sizeBits: k.sizeBits,
        blocks: k.seqs.map((s) => pool.get(s)!),
        masterSae: k.masterSae,
        pendingSlaves: [...k.pendingSlaves],
        deliveredSlaves: [],
        peerKme: null,
        state: 'ready',
        createdAt: Date.now(),
      });
      for (const s of k.seqs) pool.delete(s);
    }
    return { ok: true };
  }

  async takeOwnPad(linkId: string, owner: string, count: number): Promise<SealedBlock[] | null> {
    const pool = this.#pool(linkId, owner);
    if (pool.size < count) return null;
    const oldest = [...pool.keys()].sort((a, b) => a - b).slice(0, count);
    if (oldest.length > 0) this.#setMark(linkId, owner, oldest.at(-1)!);
    const blocks = oldest.map((s) => pool.get(s)!);
    for (const s of oldest) pool.delete(s);
    return blocks;
  }

  async relayIn(
    linkId: string,
    owner: string,
    keys: readonly RelayedKey[],
    macSeqs: readonly number[],
    nextKmes: readonly string[],
    keep?: KeptRelay,
  ): Promise<RelayInResult> {
    if (nextKmes.length === 0 && !keep) throw new RangeError('a relay goes on to a KME or keeps the keys');
    const pool = this.#pool(linkId, owner);
    const allSeqs = [...keys.flatMap((k) => k.seqs), ...macSeqs];
    const missingSeqs = allSeqs.filter((s) => !pool.has(s));
    const cancelled = this.#cancelled.get(owner);
    const existingKeyIds = keys
      .map((k) => k.keyId)
      .filter((id) => this.#keys.has(id) || this.#relayed.has(id) || cancelled?.has(id));
    if (missingSeqs.length > 0 || existingKeyIds.length > 0 || new Set(allSeqs).size !== allSeqs.length) {
      return { ok: false, missingSeqs, existingKeyIds };
    }
    const take = (seqs: readonly number[]) =>
      seqs.map((seq) => {
        const b = pool.get(seq)!;
        pool.delete(seq);
        return b;
      });
    const now = Date.now();
    if (nextKmes.length > 0) for (const k of keys) this.#relayed.set(k.keyId, { prev: owner, next: nextKmes, at: now });
    const taken = keys.map((k) => take(k.seqs));
    if (keep)
      keys.forEach((k, i) =>
        this.#keys.set(k.keyId, {
          cutBy: owner,
          keyId: k.keyId,
          linkId,
          sizeBits: k.sizeBits,
          blocks: taken[i]!,
          masterSae: keep.masterSae,
          pendingSlaves: [...keep.pendingSlaves],
          deliveredSlaves: [],
          peerKme: null,
          state: 'ready',
          createdAt: now,
          ...(k.mask ? { mask: k.mask } : {}),
        }),
      );
    return { ok: true, keys: taken, mac: take(macSeqs) };
  }

  async markDelivered(keyIds: readonly string[]): Promise<void> {
    for (const id of keyIds) {
      const k = this.#keys.get(id);
      if (!k || k.state !== 'reserved') continue;
      if (k.pendingSlaves.length === 0) this.#keys.delete(id);
      else this.#keys.set(id, { ...k, state: 'ready' });
    }
    this.#applyReturns(this.#cuts.settle(keyIds, this.#markOfShare));
  }

  /** Carries out `ReservedCuts` plans: blocks back to the pool, or burned (no cancel either way). */
  #applyReturns(plans: Map<string, ReturnPlan>): number {
    let returned = 0;
    for (const [share, plan] of plans) {
      for (const cut of plan.burn) for (const id of cut.keyIds) this.#keys.delete(id);
      for (const cut of plan.back)
        for (const id of cut.keyIds) {
          const k = this.#keys.get(id);
          if (k?.state !== 'reserved') continue;
          this.#keys.delete(id);
          const pool = this.#pool(k.linkId, k.cutBy);
          for (const b of k.blocks) pool.set(b.seq, b);
          returned++;
        }
      this.#marks.set(share, plan.mark);
    }
    return returned;
  }

  #burn(records: KeyRecord[]): void {
    const byPeer = new Map<string, string[]>();
    for (const k of records) {
      this.#keys.delete(k.keyId);
      if (k.peerKme) byPeer.set(k.peerKme, [...(byPeer.get(k.peerKme) ?? []), k.keyId]);
    }
    for (const [peerKme, ids] of byPeer) this.#outbox.push({ id: this.#nextOutboxId++, peerKme, keyIds: ids });
  }

  async cancelReserved(keyIds: readonly string[], alsoTell: readonly string[] = []): Promise<void> {
    const burned = keyIds.map((id) => this.#keys.get(id)).filter((k) => k?.state === 'reserved') as KeyRecord[];
    this.#burn(burned);
    const ids = burned.map((k) => k.keyId);
    if (ids.length > 0)
      for (const peerKme of alsoTell) this.#outbox.push({ id: this.#nextOutboxId++, peerKme, keyIds: ids });
    this.#applyReturns(this.#cuts.settle(keyIds, this.#markOfShare));
  }

  async returnReserved(keyIds: readonly string[]): Promise<number> {
    for (const id of keyIds) if (!this.#cuts.has(id) && this.#keys.get(id)?.state === 'reserved') this.#keys.delete(id);
    return this.#applyReturns(this.#cuts.return(keyIds, this.#markOfShare));
  }

  async burnAllReserved(): Promise<number> {
    const reserved = [...this.#keys.values()].filter((k) => k.state === 'reserved');
    this.#burn(reserved);
    this.#cuts.clear();
    return reserved.length;
  }

  async takeForSlave(masterSae: string, slaveSae: string, keyIds: readonly string[]): Promise<SlaveTakeResult> {
    const found = keyIds.map((id) => this.#keys.get(id));
    if (found.some((k) => !k || k.state !== 'ready' || k.masterSae !== masterSae)) {
      return { ok: false, reason: 'not_found' };
    }
    const keys = found as StoredKey[];
    if (keys.some((k) => k.deliveredSlaves.includes(slaveSae))) return { ok: false, reason: 'not_found' };
    if (keys.some((k) => !k.pendingSlaves.includes(slaveSae))) return { ok: false, reason: 'unauthorized' };
    for (const k of keys) {
      const rest = k.pendingSlaves.filter((s) => s !== slaveSae);
      if (rest.length === 0) this.#keys.delete(k.keyId);
      else this.#keys.set(k.keyId, { ...k, pendingSlaves: rest, deliveredSlaves: [...k.deliveredSlaves, slaveSae] });
    }
    return { ok: true, keys };
  }

  async cancelKeys(keyIds: readonly string[], byKme: string): Promise<CancelResult> {
    const notTheirs = keyIds.filter((id) => {
      const k = this.#keys.get(id);
      const relay = this.#relayed.get(id);
      return (k !== undefined && k.cutBy !== byKme) || (relay !== undefined && relay.prev !== byKme);
    });
    if (notTheirs.length > 0) return { ok: false, notTheirs };
    let remembered = this.#cancelled.get(byKme);
    if (!remembered) this.#cancelled.set(byKme, (remembered = new Map()));
    const now = Date.now();
    for (const id of keyIds) if (!remembered.has(id)) remembered.set(id, now);
    for (const id of remembered.keys()) {
      if (remembered.size <= MAX_REMEMBERED_CANCELS) break;
      remembered.delete(id);
    }
    // Relayed keys: the next hop may hold them (or a relay of them) too.
    const onward = new Map<string, string[]>();
    for (const id of keyIds) {
      const relay = this.#relayed.get(id);
      if (!relay) continue;
      this.#relayed.delete(id);
      for (const next of relay.next) onward.set(next, [...(onward.get(next) ?? []), id]);
    }
    for (const [peerKme, ids] of onward) this.#outbox.push({ id: this.#nextOutboxId++, peerKme, keyIds: ids });
    const removed = keyIds.filter((id) => this.#keys.delete(id)).length;
    this.#applyReturns(this.#cuts.settle(keyIds, this.#markOfShare));
    return { ok: true, removed };
  }

  async expireBefore(time: number): Promise<number> {
    const old = [...this.#keys.values()].filter((k) => k.state === 'ready' && k.createdAt < time);
    for (const k of old) this.#keys.delete(k.keyId);
    for (const [id, relay] of this.#relayed) if (relay.at < time) this.#relayed.delete(id);
    for (const remembered of this.#cancelled.values())
      for (const [id, at] of remembered) if (at < time) remembered.delete(id);
    return old.length;
  }

  async countKeys(): Promise<KeyCounts> {
    const all = [...this.#keys.values()];
    return {
      reserved: all.filter((k) => k.state === 'reserved').length,
      ready: all.filter((k) => k.state === 'ready').length,
    };
  }

  async listOutbox(limit: number): Promise<OutboxEntry[]> {
    return this.#outbox.slice(0, limit);
  }

  async ackOutbox(ids: readonly number[]): Promise<void> {
    for (const id of ids) {
      const i = this.#outbox.findIndex((e) => e.id === id);
      if (i >= 0) this.#outbox.splice(i, 1);
    }
  }

  async getPreferences(sae: string): Promise<Record<string, unknown>> {
    return { ...(this.#prefs.get(sae) ?? {}) };
  }

  async setPreference(sae: string, name: string, value: unknown): Promise<void> {
    this.#prefs.set(sae, { ...(this.#prefs.get(sae) ?? {}), [name]: value });
  }

  async close(): Promise<void> {
    this.#keys.clear();
    this.#blocks.clear();
  }
}
