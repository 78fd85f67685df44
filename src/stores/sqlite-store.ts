import Database from 'better-sqlite3';
import { checkKeyRow, ConsumedBlockMarks, keyRowTag } from './sqlite-integrity.js';
import { addColumns, decodeNextKmes, encodeNextKmes, prepareSchema, type StoreUpgrade } from './sqlite-schema.js';
import { joinBlocks, toRecord, type KeyRow } from './sqlite-rows.js';
import { prepareStatements, type Statements } from './sqlite-statements.js';
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
import { MAX_REMEMBERED_CANCELS, shareKey } from './key-store.js';
import { ReservedCuts, type ReturnPlan } from './reserved-cuts.js';

export { STORE_FORMAT, StoreFormatError, type StoreUpgrade } from './sqlite-schema.js';

/** How often the WAL is emptied (truncateWal). */
const WAL_TRUNCATE_MS = 10_000;
const splitShare = (share: string) => share.split('\u0000') as [string, string];
const ids = (keys: readonly NewKey[]) => keys.map((k) => k.keyId);

export type Synchronous = 'NORMAL' | 'FULL' | 'EXTRA';

export interface SqliteOptions {
  /**
   * `FULL` (the default) or `EXTRA`: every answered commit has reached the disk, so a power loss
   * undoes nothing that was answered. `NORMAL` (WAL): a killed process loses nothing, but a power
   * loss can undo the last commits — blocks already cut come back and are cut again for others.
   */
  readonly synchronous?: Synchronous;
}

const SYNCHRONOUS_NAMES: readonly string[] = ['OFF', 'NORMAL', 'FULL', 'EXTRA'];

interface QueuedWrite {
  run(): unknown;
  resolve(value: unknown): void;
  reject(err: unknown): void;
}

/**
 * The embedded store: one SQLite file in WAL mode. Every method is all or nothing.
 *
 * Writes are group-committed: those asked for in the same turn of the event loop run one after
 * another, each in its own savepoint, inside one SQLite transaction that commits once. A commit
 * costs more than the statements of one key request, so under load this saves most of it. Each
 * caller still gets its own result (or error, its own changes undone), and only after the commit.
 */
export class SqliteKeyStore implements KeyStore {
  readonly #db: Database.Database;
  readonly #integrity: RowIntegrity;
  /** What opening a file of an earlier format threw away; null otherwise. */
  readonly upgrade: StoreUpgrade | null;
  readonly #stmt: Statements;
  readonly #tx;
  #queue: QueuedWrite[] = [];
  /** Blocks per link and owner, once counted; kept up to date by every write that adds or takes blocks. */
  readonly #counts = new Map<string, number>();
  /** Count changes of the write running now, and of the group's writes that succeeded so far. */
  #delta = new Map<string, number>();
  #flushing: Promise<void> | undefined;
  /** The consumed-block mark of each share, under the master key's MAC. */
  readonly #marks: ConsumedBlockMarks;
  /** Reserved cuts still out, for `returnReserved`. */
  readonly #cuts = new ReservedCuts();
  readonly #walTimer: NodeJS.Timeout;

  /** `integrity` (the barrier) binds rows to their use under the master key. */
  constructor(file: string, integrity: RowIntegrity, options: SqliteOptions = {}) {
    this.#integrity = integrity;
    const synchronous = options.synchronous ?? 'FULL';
    if (!['NORMAL', 'FULL', 'EXTRA'].includes(synchronous)) throw new TypeError(`synchronous: ${synchronous}?`);
    this.#db = new Database(file);
    const db = this.#db;
    try {
      db.pragma('journal_mode = WAL');
      db.pragma(`synchronous = ${synchronous}`);
      // Deleted rows (keys delivered, blocks cut) are overwritten with zeros, not left in free pages.
      db.pragma('secure_delete = ON');
      db.pragma('busy_timeout = 5000');
      this.upgrade = prepareSchema(db, file);
      addColumns(db);
    } catch (err) {
      db.close();
      throw err;
    }
    this.#walTimer = setInterval(() => this.truncateWal(), WAL_TRUNCATE_MS);
    this.#walTimer.unref();
    this.#stmt = prepareStatements(db);
    this.#marks = new ConsumedBlockMarks(this.#stmt, integrity, (linkId, owner, count) =>
      this.#counted(linkId, owner, -count),
    );
    // Each body is made a transaction function once; run inside the group's transaction, it
    // becomes a savepoint, so that a body that throws undoes only its own changes.
    const tx = <A extends unknown[], R>(body: (...args: A) => R) => db.transaction(body);
    this.#tx = {
      addBlocks: tx((linkId: string, blocks: readonly IncomingBlock[], lastSeq: number) => {
        const marks = new Map<string, number>();
        for (const b of blocks) {
          let mark = marks.get(b.owner);
          if (mark === undefined) {
            const lowest = Math.min(...blocks.filter((o) => o.owner === b.owner).map((o) => o.seq));
            marks.set(b.owner, (mark = this.#marks.get(linkId, b.owner, lowest - 1)));
          }
          // A number consumed already is never added back: that would hand its material out again.
          if (b.seq > mark)
            this.#counted(linkId, b.owner, this.#stmt.addBlock.run(linkId, b.seq, b.owner, b.sealed).changes);
        }
        this.#stmt.setLastSeq.run(linkId, lastSeq);
      }),
      takeOwnBlocks: tx((linkId: string, owner: string, keys: readonly NewKey[]): KeyRecord[] | null => {
        const needed = keys.reduce((sum, k) => sum + k.blockCount, 0);
        const mark = this.#marks.get(linkId, owner);
        // Rows at or below the mark were consumed already: put back from a copy, never served again.
        const blocks = this.#stmt.oldestBlocks.all(linkId, owner, mark, needed);
        if (blocks.length < needed || keys.some((k) => this.#stmt.hasKey.get({ id: k.keyId }))) return null;
        if (blocks.length > 0) this.#marks.set(linkId, owner, blocks.at(-1)!.seq);
        const records: KeyRecord[] = [];
        const now = Date.now();
        let next = 0;
        for (const k of keys) {
          const mine = blocks.slice(next, (next += k.blockCount));
          for (const b of mine) this.#stmt.deleteBlock.run(linkId, owner, b.seq);
          this.#counted(linkId, owner, -mine.length);
          this.#insertKey(linkId, owner, k, mine, k.peerKme, k.state, now);
          // The record is what was just written; reading the row back would only cost a statement.
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
          this.#cuts.add(shareKey(linkId, owner), ids(keys), mark, blocks.at(-1)!.seq);
        return records;
      }),
      claimBlocks: tx((linkId: string, owner: string, keys: readonly ClaimedKey[]): ClaimResult => {
        const allSeqs = keys.flatMap((k) => k.seqs);
        const found = new Map<number, SealedBlock>();
        const mark = this.#marks.get(linkId, owner);
        for (const seq of allSeqs) {
          const b = seq > mark ? this.#stmt.getBlock.get(linkId, owner, seq) : undefined;
          if (b) found.set(seq, b);
        }
        const missingSeqs = allSeqs.filter((s) => !found.has(s));
        const existingKeyIds = keys
          .map((k) => k.keyId)
          .filter((id) => this.#stmt.claimedOrCancelled.get({ id, kme: owner }));
        if (missingSeqs.length > 0 || existingKeyIds.length > 0 || found.size !== allSeqs.length) {
          return { ok: false, missingSeqs, existingKeyIds };
        }
        const now = Date.now();
        for (const k of keys) {
          for (const seq of k.seqs) this.#stmt.deleteBlock.run(linkId, owner, seq);
          this.#counted(linkId, owner, -k.seqs.length);
          this.#insertKey(
            linkId,
            owner,
            k,
            k.seqs.map((s) => found.get(s)!),
            null,
            'ready',
            now,
          );
        }
        return { ok: true };
      }),
      takeOwnPad: tx((linkId: string, owner: string, count: number): SealedBlock[] | null => {
        const mark = this.#marks.get(linkId, owner);
        const blocks = this.#stmt.oldestBlocks.all(linkId, owner, mark, count);
        if (blocks.length < count) return null;
        if (blocks.length > 0) this.#marks.set(linkId, owner, blocks.at(-1)!.seq);
        for (const b of blocks) this.#stmt.deleteBlock.run(linkId, owner, b.seq);
        this.#counted(linkId, owner, -blocks.length);
        return blocks;
      }),
      relayIn: tx(
        (
          linkId: string,
          owner: string,
          keys: readonly RelayedKey[],
          macSeqs: readonly number[],
          nextKmes: readonly string[],
          keep: KeptRelay | undefined,
        ): RelayInResult => {
          const allSeqs = [...keys.flatMap((k) => k.seqs), ...macSeqs];
          const mark = this.#marks.get(linkId, owner);
          const found = new Map<number, SealedBlock>();
          for (const seq of allSeqs) {
            const b = seq > mark ? this.#stmt.getBlock.get(linkId, owner, seq) : undefined;
            if (b) found.set(seq, b);
          }
          const missingSeqs = allSeqs.filter((s) => !found.has(s));
          const existingKeyIds = keys.map((k) => k.keyId).filter((id) => this.#stmt.knownHere.get({ id, kme: owner }));
          if (missingSeqs.length > 0 || existingKeyIds.length > 0 || found.size !== allSeqs.length) {
            return { ok: false, missingSeqs, existingKeyIds };
          }
          for (const seq of allSeqs) this.#stmt.deleteBlock.run(linkId, owner, seq);
          this.#counted(linkId, owner, -allSeqs.length);
          const now = Date.now();
          const blocksOf = (seqs: readonly number[]) => seqs.map((seq) => found.get(seq)!);
          if (nextKmes.length > 0)
            for (const k of keys) this.#stmt.insertRelay.run(k.keyId, owner, encodeNextKmes(nextKmes), now);
          if (keep)
            for (const k of keys)
              this.#insertKey(linkId, owner, { ...k, ...keep }, blocksOf(k.seqs), null, 'ready', now, k.mask);
          return { ok: true, keys: keys.map((k) => blocksOf(k.seqs)), mac: blocksOf(macSeqs) };
        },
      ),
      markDelivered: tx((keyIds: readonly string[]) => {
        // A reserved key with no local slave goes; one with local slaves becomes ready.
        for (const id of keyIds) if (this.#stmt.dropDelivered.run(id).changes === 0) this.#stmt.setReady.run(id);
        this.#applyReturns(this.#cuts.settle(keyIds, this.#markOfShare));
      }),
      cancelReserved: tx((keyIds: readonly string[], alsoTell: readonly string[]) => {
        const rows = keyIds.map((id) => this.#stmt.getKey.get(id)).filter((r) => r?.state === 'reserved');
        this.#burn(rows as KeyRow[]);
        const burned = rows.map((r) => r!.key_id);
        if (burned.length > 0) for (const peer of alsoTell) this.#stmt.enqueue.run(peer, JSON.stringify(burned));
        this.#applyReturns(this.#cuts.settle(keyIds, this.#markOfShare));
      }),
      burnAllReserved: tx(() => {
        const rows = this.#stmt.reservedKeys.all();
        this.#burn(rows);
        this.#cuts.clear();
        return rows.length;
      }),
      takeForSlave: tx((masterSae: string, slaveSae: string, keyIds: readonly string[]): SlaveTakeResult => {
        const rows = keyIds.map((id) => this.#stmt.getKey.get(id));
        for (const row of rows) if (row) checkKeyRow(this.#integrity, row);
        if (rows.some((r) => !r || r.state !== 'ready' || r.master !== masterSae)) {
          return { ok: false, reason: 'not_found' };
        }
        const records = (rows as KeyRow[]).map(toRecord);
        if (records.some((k) => k.deliveredSlaves.includes(slaveSae))) return { ok: false, reason: 'not_found' };
        if (records.some((k) => !k.pendingSlaves.includes(slaveSae))) return { ok: false, reason: 'unauthorized' };
        for (const k of records) {
          const rest = k.pendingSlaves.filter((s) => s !== slaveSae);
          if (rest.length === 0) this.#stmt.deleteKey.run(k.keyId);
          else
            this.#stmt.setPending.run(JSON.stringify(rest), JSON.stringify([...k.deliveredSlaves, slaveSae]), k.keyId);
        }
        return { ok: true, keys: records };
      }),
      returnReserved: tx((keyIds: readonly string[]) => {
        // Reserved keys this process did not cut (none, short of a misuse) are burned: the peer never
        // heard of them either, so no cancel.
        for (const id of keyIds)
          if (!this.#cuts.has(id) && this.#stmt.getKey.get(id)?.state === 'reserved') this.#stmt.deleteKey.run(id);
        return this.#applyReturns(this.#cuts.return(keyIds, this.#markOfShare));
      }),
      cancelKeys: tx((keyIds: readonly string[], byKme: string, now: number): CancelResult => {
        const rows = keyIds.map((id) => this.#stmt.getKey.get(id));
        const relays = keyIds.map((id) => this.#stmt.getRelay.get(id));
        const notTheirs = keyIds.filter(
          (_, i) =>
            (rows[i] && rows[i].cut_by !== null && rows[i].cut_by !== byKme) || (relays[i] && relays[i].prev !== byKme),
        );
        if (notTheirs.length > 0) return { ok: false, notTheirs };
        let removed = 0;
        // Relayed keys: the next hop may hold them (or a relay of them) too.
        const onward = new Map<string, string[]>();
        keyIds.forEach((id, i) => {
          if (rows[i]?.cut_by === byKme) removed += this.#stmt.deleteKey.run(id).changes;
          const relay = relays[i];
          if (relay) {
            this.#stmt.deleteRelay.run(id);
            for (const next of decodeNextKmes(relay.next)) onward.set(next, [...(onward.get(next) ?? []), id]);
          }
          this.#stmt.remember.run(id, now, byKme);
        });
        for (const [peer, ids] of onward) this.#stmt.enqueue.run(peer, JSON.stringify(ids));
        this.#applyReturns(this.#cuts.settle(keyIds, this.#markOfShare));
        this.#stmt.forgetOldCancels.run({ kme: byKme, keep: MAX_REMEMBERED_CANCELS });
        return { ok: true, removed };
      }),
      expireBefore: tx((time: number) => {
        this.#stmt.expireCancelled.run(time);
        this.#stmt.expireRelays.run(time);
        return this.#stmt.expireKeys.run(time).changes;
      }),
      ackOutbox: tx((ids: readonly number[]) => ids.forEach((id) => this.#stmt.ackOutbox.run(id))),
      group: tx((writes: readonly QueuedWrite[]) => {
        const groupDelta = new Map<string, number>();
        const outcomes = writes.map((w) => {
          this.#delta = new Map();
          try {
            const value = w.run();
            for (const [key, d] of this.#delta) groupDelta.set(key, (groupDelta.get(key) ?? 0) + d);
            return { ok: true as const, value };
          } catch (err) {
            // Some errors (a full disk, say) make SQLite roll back the whole transaction: then
            // the writes before this one are gone too, and all of them must fail.
            if (!db.inTransaction) throw err;
            return { ok: false as const, err };
          }
        });
        this.#delta = groupDelta;
        return outcomes;
      }),
    };
  }

  /** Queues a write for the group commit at the end of this turn of the event loop. */
  #write<T>(run: () => T): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      this.#queue.push({ run, resolve: resolve as (value: unknown) => void, reject });
      this.#flushing ??= new Promise((done) =>
        setImmediate(() => {
          this.#flushing = undefined;
          this.#commitQueued();
          done();
        }),
      );
    });
  }

  #commitQueued(): void {
    const writes = this.#queue;
    this.#queue = [];
    let outcomes;
    try {
      outcomes = this.#tx.group(writes);
    } catch (err) {
      this.#delta = new Map();
      for (const w of writes) w.reject(err);
      return;
    }
    // Committed: the counts follow (only those counted already; the others are read when asked).
    for (const [key, d] of this.#delta) {
      const n = this.#counts.get(key);
      if (n !== undefined) this.#counts.set(key, n + d);
    }
    this.#delta = new Map();
    // Answers only now that the commit is done: nobody acts on a change that might not last.
    writes.forEach((w, i) => {
      const o = outcomes[i]!;
      if (o.ok) w.resolve(o.value);
      else w.reject(o.err);
    });
  }

  addBlocks(linkId: string, blocks: readonly IncomingBlock[], lastSeq: number): Promise<void> {
    return this.#write(() => this.#tx.addBlocks(linkId, blocks, lastSeq));
  }

  async lastSeq(linkId: string): Promise<number | null> {
    return this.#stmt.lastSeq.get(linkId)?.last_seq ?? null;
  }

  /** From memory: counting a full pool in SQLite takes milliseconds, and status asks on every call. */
  async countBlocks(linkId: string, owner: string): Promise<number> {
    const key = shareKey(linkId, owner);
    let n = this.#counts.get(key);
    if (n === undefined) this.#counts.set(key, (n = this.#stmt.countBlocks.get(linkId, owner)!.n));
    return n;
  }

  /**
   * Notes a change in one share's block count made by the write now running; it counts once that
   * write's savepoint and the group's commit have succeeded. Returns how many blocks changed.
   */
  #counted(linkId: string, owner: string, delta: number): number {
    if (delta !== 0) {
      const key = shareKey(linkId, owner);
      this.#delta.set(key, (this.#delta.get(key) ?? 0) + delta);
    }
    return Math.abs(delta);
  }

  discardBlocksBefore(linkId: string, owner: string, seq: number): Promise<number> {
    return this.#write(() => {
      if (seq - 1 > this.#marks.get(linkId, owner)) this.#marks.set(linkId, owner, seq - 1);
      return this.#counted(linkId, owner, -this.#stmt.discardBlocks.run(linkId, owner, seq).changes);
    });
  }

  readonly #markOfShare = (share: string): number => this.#marks.get(...splitShare(share));

  /** Carries out `ReservedCuts` plans: blocks back to the pool (their rows checked first), or burned. */
  #applyReturns(plans: Map<string, ReturnPlan>): number {
    let returned = 0;
    for (const [share, plan] of plans) {
      const [linkId, owner] = splitShare(share);
      for (const cut of plan.burn) for (const id of cut.keyIds) this.#stmt.deleteKey.run(id);
      for (const cut of plan.back)
        for (const id of cut.keyIds) {
          const row = this.#stmt.getKey.get(id);
          if (row?.state !== 'reserved') continue;
          checkKeyRow(this.#integrity, row);
          this.#stmt.deleteKey.run(id);
          for (const b of toRecord(row).blocks)
            this.#counted(linkId, owner, this.#stmt.addBlock.run(linkId, b.seq, owner, b.sealed).changes);
          returned++;
        }
      this.#marks.set(linkId, owner, plan.mark);
    }
    return returned;
  }

  #insertKey(
    linkId: string,
    cutBy: string,
    k: NewKey | ClaimedKey,
    blocks: readonly SealedBlock[],
    peer: string | null,
    state: KeyState,
    now: number,
    mask: Buffer | null = null,
  ) {
    const seqs = JSON.stringify(blocks.map((b) => b.seq));
    this.#stmt.insertKey.run(
      k.keyId,
      linkId,
      k.sizeBits,
      seqs,
      joinBlocks(blocks),
      k.masterSae,
      JSON.stringify(k.pendingSlaves),
      peer,
      state,
      now,
      cutBy,
      mask,
      keyRowTag(this.#integrity, k, linkId, seqs, mask),
    );
  }

  takeOwnBlocks(linkId: string, owner: string, keys: readonly NewKey[]): Promise<KeyRecord[] | null> {
    return this.#write(() => this.#tx.takeOwnBlocks(linkId, owner, keys));
  }

  claimBlocks(linkId: string, owner: string, keys: readonly ClaimedKey[]): Promise<ClaimResult> {
    return this.#write(() => this.#tx.claimBlocks(linkId, owner, keys));
  }

  takeOwnPad(linkId: string, owner: string, count: number): Promise<SealedBlock[] | null> {
    return this.#write(() => this.#tx.takeOwnPad(linkId, owner, count));
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
    return this.#write(() => this.#tx.relayIn(linkId, owner, keys, macSeqs, nextKmes, keep));
  }

  markDelivered(keyIds: readonly string[]): Promise<void> {
    return this.#write(() => this.#tx.markDelivered(keyIds));
  }

  #burn(rows: KeyRow[]): void {
    const byPeer = new Map<string, string[]>();
    for (const row of rows) {
      this.#stmt.deleteKey.run(row.key_id);
      if (row.peer) byPeer.set(row.peer, [...(byPeer.get(row.peer) ?? []), row.key_id]);
    }
    for (const [peer, ids] of byPeer) this.#stmt.enqueue.run(peer, JSON.stringify(ids));
  }

  cancelReserved(keyIds: readonly string[], alsoTell: readonly string[] = []): Promise<void> {
    return this.#write(() => this.#tx.cancelReserved(keyIds, alsoTell));
  }

  burnAllReserved(): Promise<number> {
    return this.#write(() => this.#tx.burnAllReserved());
  }

  takeForSlave(masterSae: string, slaveSae: string, keyIds: readonly string[]): Promise<SlaveTakeResult> {
    return this.#write(() => this.#tx.takeForSlave(masterSae, slaveSae, keyIds));
  }

  returnReserved(keyIds: readonly string[]): Promise<number> {
    return this.#write(() => this.#tx.returnReserved(keyIds));
  }

  cancelKeys(keyIds: readonly string[], byKme: string): Promise<CancelResult> {
    const now = Date.now();
    return this.#write(() => this.#tx.cancelKeys(keyIds, byKme, now));
  }

  expireBefore(time: number): Promise<number> {
    return this.#write(() => this.#tx.expireBefore(time));
  }

  async countKeys(): Promise<KeyCounts> {
    const counts = { reserved: 0, ready: 0 };
    for (const row of this.#stmt.countKeys.all()) counts[row.state] = row.n;
    return counts;
  }

  async listOutbox(limit: number): Promise<OutboxEntry[]> {
    return this.#stmt.listOutbox
      .all(limit)
      .map((r) => ({ id: r.id, peerKme: r.peer, keyIds: JSON.parse(r.key_ids) as string[] }));
  }

  ackOutbox(ids: readonly number[]): Promise<void> {
    return this.#write(() => this.#tx.ackOutbox(ids));
  }

  async getPreferences(sae: string): Promise<Record<string, unknown>> {
    const prefs: Record<string, unknown> = {};
    for (const row of this.#stmt.getPrefs.all(sae)) prefs[row.name] = JSON.parse(row.value);
    return prefs;
  }

  setPreference(sae: string, name: string, value: unknown): Promise<void> {
    return this.#write(() => {
      this.#stmt.setPref.run(sae, name, JSON.stringify(value));
    });
  }

  /** The `synchronous` setting in force on this store's connection, as SQLite reports it. */
  get synchronous(): string {
    return SYNCHRONOUS_NAMES[this.#db.pragma('synchronous', { simple: true }) as number] ?? 'unknown';
  }

  /**
   * Moves the WAL into the database and empties it. The WAL keeps earlier images of changed pages,
   * deleted rows' sealed bytes among them, which `secure_delete` does not reach: this bounds how long
   * they stay there (WAL_TRUNCATE_MS), besides SQLite's own checkpoints.
   */
  truncateWal(): void {
    if (!this.#db.open || this.#db.inTransaction) return;
    try {
      this.#db.pragma('wal_checkpoint(TRUNCATE)');
    } catch {
      // Busy: the next turn truncates it.
    }
  }

  async close(): Promise<void> {
    clearInterval(this.#walTimer);
    // Writes already queued still commit (or fail) before the file closes.
    while (this.#flushing) await this.#flushing;
    if (this.#db.open) this.#db.close();
  }
}
