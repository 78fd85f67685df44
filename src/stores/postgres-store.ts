import type pg from 'pg';
import type {
  CancelResult,
  ClaimedKey,
  ClaimResult,
  IncomingBlock,
  KeptRelay,
  KeyCounts,
  KeyRecord,
  KeyState,
  KeyStore,
  NewKey,
  OutboxEntry,
  RelayedKey,
  RelayInResult,
  RowIntegrity,
  SealedBlock,
  SlaveTakeResult,
} from './key-store.js';
import { MAX_REMEMBERED_CANCELS } from './key-store.js';
import type { LeaseStore } from './leases.js';
import { addCut, LoadedCuts, lockShares, markOf, setMark, type ReturnPlan, type Share } from './postgres-rows.js';
import { describeTarget, newPool, type PostgresOptions } from './postgres-pool.js';
import { migrate } from './postgres-schema.js';
import { sql } from './postgres-statements.js';
import { inTransaction, query, type Tx } from './postgres-tx.js';
import { checkKeyRow, keyRowTag } from './sqlite-integrity.js';
import { decodeNextKmes, encodeNextKmes } from './sqlite-schema.js';
import { joinBlocks, toRecord, type KeyRow } from './sqlite-rows.js';

export { PG_SCHEMA_VERSION, PgSchemaError } from './postgres-schema.js';
export { describeTarget, type PostgresOptions } from './postgres-pool.js';

const splitShare = (share: string) => share.split('\u0000') as [string, string];

/**
 * A store in a PostgreSQL database, which several KME processes (replicas of one KME) may share.
 * Every method is one transaction. Changes to a share (one KME's blocks of a link: its blocks,
 * consumed-block mark and reserved cuts) hold that share's advisory lock to the end of the
 * transaction, and keys are locked by row, so concurrent calls from any process act one after
 * another. Nothing shared is cached in the process: counts and cuts are read from the database.
 */
export class PostgresKeyStore implements KeyStore, LeaseStore {
  readonly #pool: pg.Pool;
  readonly #integrity: RowIntegrity;
  readonly #replica: string;

  private constructor(pool: pg.Pool, integrity: RowIntegrity, replica: string) {
    this.#pool = pool;
    this.#integrity = integrity;
    this.#replica = replica;
  }

  /** Connects, and migrates the schema (once, however many replicas start together). */
  static async open(options: PostgresOptions, integrity: RowIntegrity): Promise<PostgresKeyStore> {
    const pool = newPool(options);
    const store = new PostgresKeyStore(pool, integrity, options.replica ?? '');
    try {
      const client = await pool.connect().catch((err: unknown) => {
        throw new Error(`cannot connect to PostgreSQL at ${describeTarget(options)}: ${(err as Error).message}`);
      });
      try {
        await migrate(client);
      } finally {
        client.release();
      }
    } catch (err) {
      await pool.end();
      throw err;
    }
    return store;
  }

  #tx<T>(what: string, body: (tx: Tx) => Promise<T>): Promise<T> {
    return inTransaction(this.#pool, what, body);
  }

  addBlocks(linkId: string, blocks: readonly IncomingBlock[], lastSeq: number): Promise<void> {
    return this.#tx('addBlocks', async (tx) => {
      const owners = [...new Set(blocks.map((b) => b.owner))];
      for (const { owner } of await lockShares(
        tx,
        owners.map((owner) => ({ link: linkId, owner })),
      )) {
        const mine = blocks.filter((b) => b.owner === owner);
        const lowest = Math.min(...mine.map((b) => b.seq));
        const mark = await markOf(tx, this.#integrity, linkId, owner, lowest - 1);
        // A number consumed already is never added back: that would hand its material out again.
        const fresh = mine.filter((b) => b.seq > mark);
        if (fresh.length > 0)
          await sql.addBlocks(
            tx,
            linkId,
            owner,
            fresh.map((b) => b.seq),
            fresh.map((b) => b.sealed),
          );
      }
      await sql.setLastSeq(tx, linkId, lastSeq);
    });
  }

  async lastSeq(linkId: string): Promise<number | null> {
    const rows = await query<{ last_seq: number }>(
      this.#pool,
      'lastSeq',
      'SELECT last_seq FROM links WHERE link = $1',
      [linkId],
    );
    return rows[0]?.last_seq ?? null;
  }

  async countBlocks(linkId: string, owner: string): Promise<number> {
    const rows = await query<{ n: number }>(
      this.#pool,
      'countBlocks',
      'SELECT count(*) AS n FROM blocks WHERE link = $1 AND owner = $2',
      [linkId, owner],
    );
    return rows[0]!.n;
  }

  discardBlocksBefore(linkId: string, owner: string, seq: number): Promise<number> {
    return this.#tx('discardBlocksBefore', async (tx) => {
      await sql.lockShare(tx, linkId, owner);
      if (seq - 1 > (await markOf(tx, this.#integrity, linkId, owner)))
        await setMark(tx, this.#integrity, linkId, owner, seq - 1);
      return sql.discardBlocks(tx, linkId, owner, seq);
    });
  }

  /** Takes the share's `count` oldest blocks above its mark and raises the mark; null (no change) if too few. */
  async #cutOldest(tx: Tx, linkId: string, owner: string, count: number) {
    await sql.lockShare(tx, linkId, owner);
    const mark = await markOf(tx, this.#integrity, linkId, owner);
    const blocks = await sql.oldestBlocks(tx, linkId, owner, mark, count);
    return { mark, blocks, enough: blocks.length >= count };
  }

  async #consume(tx: Tx, linkId: string, owner: string, blocks: readonly SealedBlock[]) {
    if (blocks.length === 0) return;
    await setMark(tx, this.#integrity, linkId, owner, Math.max(...blocks.map((b) => b.seq)));
    await sql.deleteBlocks(
      tx,
      linkId,
      owner,
      blocks.map((b) => b.seq),
    );
  }

  takeOwnBlocks(linkId: string, owner: string, keys: readonly NewKey[]): Promise<KeyRecord[] | null> {
    return this.#tx('takeOwnBlocks', async (tx) => {
      const needed = keys.reduce((sum, k) => sum + k.blockCount, 0);
      const { mark, blocks, enough } = await this.#cutOldest(tx, linkId, owner, needed);
      const ids = keys.map((k) => k.keyId);
      if (!enough || (await sql.takenIds(tx, ids))) return null;
      await this.#consume(tx, linkId, owner, blocks);
      const records: KeyRecord[] = [];
      const now = Date.now();
      let next = 0;
      for (const k of keys) {
        const mine = blocks.slice(next, (next += k.blockCount));
        await this.#insertKey(tx, linkId, owner, k, mine, k.peerKme, k.state, now);
        records.push({
          keyId: k.keyId,
          linkId,
          sizeBits: k.sizeBits,
          blocks: mine,
          masterSae: k.masterSae,
          pendingSlaves: [...k.pendingSlaves],
          deliveredSlaves: [],
          peerKme: k.peerKme,
          state: k.state,
          createdAt: now,
        });
      }
      if (blocks.length > 0 && keys.every((k) => k.state === 'reserved'))
        await addCut(
          tx,
          this.#integrity,
          {
            link: linkId,
            owner,
            keyIds: ids,
            markBefore: mark,
            max: blocks.at(-1)!.seq,
          },
          this.#replica,
        );
      return records;
    });
  }

  /** The named blocks of the share above its mark; what is missing (or named twice). */
  async #findBlocks(tx: Tx, linkId: string, owner: string, seqs: readonly number[]) {
    await sql.lockShare(tx, linkId, owner);
    const mark = await markOf(tx, this.#integrity, linkId, owner);
    const found = new Map<number, SealedBlock>();
    for (const b of await sql.getBlocks(
      tx,
      linkId,
      owner,
      seqs.filter((s) => s > mark),
    ))
      found.set(b.seq, b);
    const missingSeqs = seqs.filter((s) => !found.has(s));
    return { found, missingSeqs, complete: missingSeqs.length === 0 && found.size === seqs.length };
  }

  claimBlocks(linkId: string, owner: string, keys: readonly ClaimedKey[]): Promise<ClaimResult> {
    return this.#tx('claimBlocks', async (tx) => {
      const allSeqs = keys.flatMap((k) => k.seqs);
      const { found, missingSeqs, complete } = await this.#findBlocks(tx, linkId, owner, allSeqs);
      const known = await sql.knownIds(
        tx,
        keys.map((k) => k.keyId),
        owner,
        false,
      );
      const existingKeyIds = keys.map((k) => k.keyId).filter((id) => known.has(id));
      if (!complete || existingKeyIds.length > 0) return { ok: false, missingSeqs, existingKeyIds };
      await sql.deleteBlocks(tx, linkId, owner, allSeqs);
      const now = Date.now();
      for (const k of keys)
        await this.#insertKey(
          tx,
          linkId,
          owner,
          k,
          k.seqs.map((s) => found.get(s)!),
          null,
          'ready',
          now,
        );
      return { ok: true };
    });
  }

  takeOwnPad(linkId: string, owner: string, count: number): Promise<SealedBlock[] | null> {
    return this.#tx('takeOwnPad', async (tx) => {
      const { blocks, enough } = await this.#cutOldest(tx, linkId, owner, count);
      if (!enough) return null;
      await this.#consume(tx, linkId, owner, blocks);
      return blocks;
    });
  }

  relayIn(
    linkId: string,
    owner: string,
    keys: readonly RelayedKey[],
    macSeqs: readonly number[],
    nextKmes: readonly string[],
    keep?: KeptRelay,
  ): Promise<RelayInResult> {
    if (nextKmes.length === 0 && !keep)
      return Promise.reject(new RangeError('a relay goes on to a KME or keeps the keys'));
    return this.#tx('relayIn', async (tx) => {
      const allSeqs = [...keys.flatMap((k) => k.seqs), ...macSeqs];
      const { found, missingSeqs, complete } = await this.#findBlocks(tx, linkId, owner, allSeqs);
      const ids = keys.map((k) => k.keyId);
      const known = await sql.knownIds(tx, ids, owner, true);
      const existingKeyIds = ids.filter((id) => known.has(id));
      if (!complete || existingKeyIds.length > 0) return { ok: false, missingSeqs, existingKeyIds };
      await sql.deleteBlocks(tx, linkId, owner, allSeqs);
      const now = Date.now();
      const blocksOf = (seqs: readonly number[]) => seqs.map((seq) => found.get(seq)!);
      if (nextKmes.length > 0) await sql.insertRelays(tx, ids, owner, encodeNextKmes(nextKmes), now);
      if (keep)
        for (const k of keys)
          await this.#insertKey(tx, linkId, owner, { ...k, ...keep }, blocksOf(k.seqs), null, 'ready', now, k.mask);
      return { ok: true, keys: keys.map((k) => blocksOf(k.seqs)), mac: blocksOf(macSeqs) };
    });
  }

  /**
   * Locks the shares the keys were cut from (before any key row: the order every caller keeps) and
   * loads their marks and reserved cuts.
   */
  async #lockCutsOf(tx: Tx, keyIds: readonly string[]): Promise<LoadedCuts> {
    const shares: Share[] = await sql.sharesOfKeys(tx, keyIds);
    return LoadedCuts.load(tx, this.#integrity, await lockShares(tx, shares));
  }

  /** Carries out ReservedCuts plans: blocks back to the pool (their rows checked first), or burned. */
  async #applyReturns(tx: Tx, plans: Map<string, ReturnPlan>): Promise<number> {
    let returned = 0;
    for (const [share, plan] of plans) {
      const [linkId, owner] = splitShare(share);
      const burned = plan.burn.flatMap((c) => c.keyIds);
      if (burned.length > 0) await sql.deleteKeys(tx, burned);
      for (const cut of plan.back) {
        const rows = new Map((await sql.lockKeys(tx, cut.keyIds)).map((r) => [r.key_id, r]));
        for (const id of cut.keyIds) {
          const row = rows.get(id);
          if (row?.state !== 'reserved') continue;
          checkKeyRow(this.#integrity, row);
          await sql.deleteKeys(tx, [id]);
          await sql.returnBlocks(tx, linkId, owner, toRecord(row).blocks);
          returned++;
        }
      }
      await setMark(tx, this.#integrity, linkId, owner, plan.mark);
    }
    return returned;
  }

  markDelivered(keyIds: readonly string[]): Promise<void> {
    return this.#tx('markDelivered', async (tx) => {
      const loaded = await this.#lockCutsOf(tx, keyIds);
      // A reserved key with no local slave goes; one with local slaves becomes ready.
      for (const id of keyIds) if ((await sql.dropDelivered(tx, id)) === 0) await sql.setReady(tx, id);
      await this.#applyReturns(tx, loaded.cuts.settle(keyIds, loaded.markOfShare));
      await loaded.save(tx);
    });
  }

  /** Deletes the keys and queues one cancel per peer they were reserved with. */
  async #burn(tx: Tx, rows: readonly KeyRow[]): Promise<void> {
    if (rows.length === 0) return;
    await sql.deleteKeys(
      tx,
      rows.map((r) => r.key_id),
    );
    const byPeer = new Map<string, string[]>();
    for (const row of rows) if (row.peer) byPeer.set(row.peer, [...(byPeer.get(row.peer) ?? []), row.key_id]);
    for (const [peer, ids] of byPeer) await sql.enqueue(tx, peer, ids);
  }

  cancelReserved(keyIds: readonly string[], alsoTell: readonly string[] = []): Promise<void> {
    return this.#tx('cancelReserved', async (tx) => {
      const loaded = await this.#lockCutsOf(tx, keyIds);
      const byId = new Map((await sql.lockKeys(tx, keyIds)).map((r) => [r.key_id, r]));
      const rows = [...new Set(keyIds)].map((id) => byId.get(id)).filter((r) => r?.state === 'reserved') as KeyRow[];
      await this.#burn(tx, rows);
      const burned = rows.map((r) => r.key_id);
      if (burned.length > 0) for (const peer of alsoTell) await sql.enqueue(tx, peer, burned);
      await this.#applyReturns(tx, loaded.cuts.settle(keyIds, loaded.markOfShare));
      await loaded.save(tx);
    });
  }

  burnAllReserved(): Promise<number> {
    return this.#tx('burnAllReserved', async (tx) => {
      await lockShares(tx, await sql.reservedShares(tx, this.#replica));
      const rows = await sql.reservedKeys(tx, this.#replica);
      await this.#burn(tx, rows);
      await sql.clearCuts(tx, this.#replica);
      return rows.length;
    });
  }

  takeForSlave(masterSae: string, slaveSae: string, keyIds: readonly string[]): Promise<SlaveTakeResult> {
    return this.#tx('takeForSlave', async (tx): Promise<SlaveTakeResult> => {
      const byId = new Map((await sql.lockKeys(tx, keyIds)).map((r) => [r.key_id, r]));
      const rows = keyIds.map((id) => byId.get(id));
      for (const row of rows) if (row) checkKeyRow(this.#integrity, row);
      if (rows.some((r) => !r || r.state !== 'ready' || r.master !== masterSae))
        return { ok: false, reason: 'not_found' };
      const records = (rows as KeyRow[]).map(toRecord);
      if (records.some((k) => k.deliveredSlaves.includes(slaveSae))) return { ok: false, reason: 'not_found' };
      if (records.some((k) => !k.pendingSlaves.includes(slaveSae))) return { ok: false, reason: 'unauthorized' };
      for (const k of records) {
        const rest = k.pendingSlaves.filter((s) => s !== slaveSae);
        if (rest.length === 0) await sql.deleteKeys(tx, [k.keyId]);
        else await sql.setPending(tx, k.keyId, JSON.stringify(rest), JSON.stringify([...k.deliveredSlaves, slaveSae]));
      }
      return { ok: true, keys: records };
    });
  }

  returnReserved(keyIds: readonly string[]): Promise<number> {
    return this.#tx('returnReserved', async (tx) => {
      const loaded = await this.#lockCutsOf(tx, keyIds);
      const byId = new Map((await sql.lockKeys(tx, keyIds)).map((r) => [r.key_id, r]));
      // Reserved keys of no cut (none, short of a misuse) are burned: the peer never heard of them
      // either, so no cancel.
      const orphans = keyIds.filter((id) => !loaded.cuts.has(id) && byId.get(id)?.state === 'reserved');
      if (orphans.length > 0) await sql.deleteKeys(tx, orphans);
      const returned = await this.#applyReturns(tx, loaded.cuts.return(keyIds, loaded.markOfShare));
      await loaded.save(tx, keyIds);
      return returned;
    });
  }

  cancelKeys(keyIds: readonly string[], byKme: string): Promise<CancelResult> {
    const now = Date.now();
    return this.#tx('cancelKeys', async (tx): Promise<CancelResult> => {
      const loaded = await this.#lockCutsOf(tx, keyIds);
      const rows = new Map((await sql.lockKeys(tx, keyIds)).map((r) => [r.key_id, r]));
      const relays = new Map((await sql.lockRelays(tx, keyIds)).map((r) => [r.key_id, r]));
      const notTheirs = keyIds.filter((id) => {
        const row = rows.get(id);
        const relay = relays.get(id);
        return (row && row.cut_by !== null && row.cut_by !== byKme) || (relay && relay.prev !== byKme);
      });
      if (notTheirs.length > 0) return { ok: false, notTheirs };
      const mine = keyIds.filter((id) => rows.get(id)?.cut_by === byKme);
      const removed = mine.length > 0 ? await sql.deleteKeys(tx, mine) : 0;
      // Relayed keys: the next hop may hold them (or a relay of them) too.
      const onward = new Map<string, string[]>();
      for (const id of keyIds) {
        const relay = relays.get(id);
        if (relay) for (const next of decodeNextKmes(relay.next)) onward.set(next, [...(onward.get(next) ?? []), id]);
      }
      if (relays.size > 0) await sql.deleteRelays(tx, [...relays.keys()]);
      await sql.remember(tx, keyIds, now, byKme);
      for (const [peer, ids] of onward) await sql.enqueue(tx, peer, ids);
      await this.#applyReturns(tx, loaded.cuts.settle(keyIds, loaded.markOfShare));
      await loaded.save(tx);
      await sql.forgetOldCancels(tx, byKme, MAX_REMEMBERED_CANCELS);
      return { ok: true, removed };
    });
  }

  expireBefore(time: number): Promise<number> {
    return this.#tx('expireBefore', async (tx) => {
      await sql.expireCancelled(tx, time);
      await sql.expireRelays(tx, time);
      return sql.expireKeys(tx, time);
    });
  }

  async countKeys(): Promise<KeyCounts> {
    const counts = { reserved: 0, ready: 0 };
    const rows = await query<{ state: KeyState; n: number }>(
      this.#pool,
      'countKeys',
      'SELECT state, count(*) AS n FROM keys GROUP BY state',
      [],
    );
    for (const row of rows) counts[row.state] = row.n;
    return counts;
  }

  async listOutbox(limit: number): Promise<OutboxEntry[]> {
    const rows = await query<{ id: number; peer: string; key_ids: string }>(
      this.#pool,
      'listOutbox',
      'SELECT id, peer, key_ids FROM outbox ORDER BY id LIMIT $1',
      [limit],
    );
    return rows.map((r) => ({ id: r.id, peerKme: r.peer, keyIds: JSON.parse(r.key_ids) as string[] }));
  }

  ackOutbox(ids: readonly number[]): Promise<void> {
    return this.#tx('ackOutbox', async (tx) => {
      await sql.ackOutbox(tx, ids);
    });
  }

  async getPreferences(sae: string): Promise<Record<string, unknown>> {
    const prefs: Record<string, unknown> = {};
    const rows = await query<{ name: string; value: string }>(
      this.#pool,
      'getPreferences',
      'SELECT name, value FROM preferences WHERE sae = $1',
      [sae],
    );
    for (const row of rows) prefs[row.name] = JSON.parse(row.value);
    return prefs;
  }

  setPreference(sae: string, name: string, value: unknown): Promise<void> {
    return this.#tx('setPreference', async (tx) => {
      await sql.setPref(tx, sae, name, JSON.stringify(value));
    });
  }

  async #insertKey(
    tx: Tx,
    linkId: string,
    cutBy: string,
    k: NewKey | ClaimedKey,
    blocks: readonly SealedBlock[],
    peer: string | null,
    state: KeyState,
    now: number,
    mask: Buffer | null = null,
  ): Promise<void> {
    const seqs = JSON.stringify(blocks.map((b) => b.seq));
    await sql.insertKey(
      tx,
      {
        key_id: k.keyId,
        link: linkId,
        size_bits: k.sizeBits,
        seqs,
        sealed: joinBlocks(blocks),
        master: k.masterSae,
        pending: JSON.stringify(k.pendingSlaves),
        peer,
        state,
        created_at: now,
        cut_by: cutBy,
        mask,
        tag: keyRowTag(this.#integrity, k, linkId, seqs, mask),
      },
      this.#replica,
    );
  }

  holdLease(name: string, holder: string, ttlMs: number): Promise<boolean> {
    return this.#tx('holdLease', async (tx) => (await sql.holdLease(tx, name, holder, ttlMs)).length === 1);
  }

  releaseLease(name: string, holder: string): Promise<void> {
    return this.#tx('releaseLease', async (tx) => {
      await sql.releaseLease(tx, name, holder);
    });
  }

  leaseHolder(name: string): Promise<string | null> {
    return this.#tx('leaseHolder', async (tx) => (await sql.leaseHolder(tx, name))[0]?.holder ?? null);
  }

  async close(): Promise<void> {
    await this.#pool.end();
  }
}
