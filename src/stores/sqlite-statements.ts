import type Database from 'better-sqlite3';
import type { KeyState, SealedBlock } from './key-store.js';
import type { KeyRow } from './sqlite-rows.js';

/**
 * Every statement the SQLite store runs, with what it binds and returns. (The types are spelled
 * here, not inferred from the prepare calls: better-sqlite3's own statement type has no name a
 * module's declarations could use.)
 */
export interface Statements {
  readonly addBlock: Database.Statement;
  readonly setLastSeq: Database.Statement;
  readonly lastSeq: Database.Statement<[string], { last_seq: number }>;
  readonly countBlocks: Database.Statement<[string, string], { n: number }>;
  readonly discardBlocks: Database.Statement;
  readonly oldestBlocks: Database.Statement<[string, string, number, number], SealedBlock>;
  readonly newestBlock: Database.Statement<[string, string], { seq: number | null }>;
  readonly getMark: Database.Statement<[string, string], { seq: number; tag: Buffer }>;
  readonly setMark: Database.Statement;
  readonly getBlock: Database.Statement<[string, string, number], SealedBlock>;
  readonly deleteBlock: Database.Statement;
  readonly insertKey: Database.Statement;
  readonly getKey: Database.Statement<[string], KeyRow>;
  readonly hasKey: Database.Statement<[{ id: string }], { one: number }>;
  /** Known here, or cancelled by the KME now claiming it (or by some KME, before that was recorded). */
  readonly claimedOrCancelled: Database.Statement<[{ id: string; kme: string }], { one: number }>;
  readonly remember: Database.Statement;
  readonly forgetOldCancels: Database.Statement;
  readonly expireKeys: Database.Statement;
  readonly expireCancelled: Database.Statement;
  readonly deleteKey: Database.Statement;
  readonly setReady: Database.Statement;
  readonly dropDelivered: Database.Statement;
  readonly setPending: Database.Statement;
  readonly reservedKeys: Database.Statement<[], KeyRow>;
  readonly countKeys: Database.Statement<[], { state: KeyState; n: number }>;
  readonly enqueue: Database.Statement;
  readonly listOutbox: Database.Statement<[number], { id: number; peer: string; key_ids: string }>;
  readonly ackOutbox: Database.Statement;
  readonly insertRelay: Database.Statement;
  readonly getRelay: Database.Statement<[string], { prev: string; next: string }>;
  readonly deleteRelay: Database.Statement;
  readonly expireRelays: Database.Statement;
  readonly knownHere: Database.Statement<[{ id: string; kme: string }], { one: number }>;
  readonly getPrefs: Database.Statement<[string], { name: string; value: string }>;
  readonly setPref: Database.Statement;
}

/** Prepares them all once, when the file opens. */
export function prepareStatements(db: Database.Database): Statements {
  return {
    addBlock: db.prepare('INSERT OR IGNORE INTO blocks (link, seq, owner, sealed) VALUES (?, ?, ?, ?)'),
    setLastSeq: db.prepare(
      'INSERT INTO links (link, last_seq) VALUES (?, ?) ON CONFLICT (link) DO UPDATE SET last_seq = max(last_seq, excluded.last_seq)',
    ),
    lastSeq: db.prepare('SELECT last_seq FROM links WHERE link = ?'),
    countBlocks: db.prepare('SELECT count(*) AS n FROM blocks WHERE link = ? AND owner = ?'),
    discardBlocks: db.prepare('DELETE FROM blocks WHERE link = ? AND owner = ? AND seq < ?'),
    oldestBlocks: db.prepare(
      'SELECT seq, sealed FROM blocks WHERE link = ? AND owner = ? AND seq > ? ORDER BY seq LIMIT ?',
    ),
    newestBlock: db.prepare('SELECT max(seq) AS seq FROM blocks WHERE link = ? AND owner = ?'),
    getMark: db.prepare('SELECT seq, tag FROM marks WHERE link = ? AND owner = ?'),
    setMark: db.prepare(
      'INSERT INTO marks (link, owner, seq, tag) VALUES (?, ?, ?, ?) ON CONFLICT (link, owner) DO UPDATE SET seq = excluded.seq, tag = excluded.tag',
    ),
    getBlock: db.prepare('SELECT seq, sealed FROM blocks WHERE link = ? AND owner = ? AND seq = ?'),
    deleteBlock: db.prepare('DELETE FROM blocks WHERE link = ? AND owner = ? AND seq = ?'),
    insertKey: db.prepare(
      'INSERT INTO keys (key_id, link, size_bits, seqs, sealed, master, pending, peer, state, created_at, cut_by, mask, tag) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)',
    ),
    getKey: db.prepare('SELECT * FROM keys WHERE key_id = ?'),
    hasKey: db.prepare(
      'SELECT 1 AS one FROM keys WHERE key_id = @id UNION ALL SELECT 1 FROM cancelled WHERE key_id = @id',
    ),
    claimedOrCancelled: db.prepare(
      'SELECT 1 AS one FROM keys WHERE key_id = @id UNION ALL SELECT 1 FROM cancelled WHERE key_id = @id AND (kme = @kme OR kme IS NULL)',
    ),
    remember: db.prepare('INSERT OR IGNORE INTO cancelled (key_id, at, kme) VALUES (?, ?, ?)'),
    forgetOldCancels: db.prepare(
      'DELETE FROM cancelled WHERE kme = @kme AND key_id IN (SELECT key_id FROM cancelled WHERE kme = @kme ORDER BY at DESC, key_id LIMIT -1 OFFSET @keep)',
    ),
    expireKeys: db.prepare("DELETE FROM keys WHERE state = 'ready' AND created_at < ?"),
    expireCancelled: db.prepare('DELETE FROM cancelled WHERE at < ?'),
    deleteKey: db.prepare('DELETE FROM keys WHERE key_id = ?'),
    setReady: db.prepare("UPDATE keys SET state = 'ready' WHERE key_id = ? AND state = 'reserved'"),
    dropDelivered: db.prepare("DELETE FROM keys WHERE key_id = ? AND state = 'reserved' AND pending = '[]'"),
    setPending: db.prepare('UPDATE keys SET pending = ?, delivered = ? WHERE key_id = ?'),
    reservedKeys: db.prepare("SELECT * FROM keys WHERE state = 'reserved'"),
    countKeys: db.prepare('SELECT state, count(*) AS n FROM keys GROUP BY state'),
    enqueue: db.prepare('INSERT INTO outbox (peer, key_ids) VALUES (?, ?)'),
    listOutbox: db.prepare('SELECT id, peer, key_ids FROM outbox ORDER BY id LIMIT ?'),
    ackOutbox: db.prepare('DELETE FROM outbox WHERE id = ?'),
    insertRelay: db.prepare('INSERT INTO relayed (key_id, prev, next, at) VALUES (?, ?, ?, ?)'),
    getRelay: db.prepare('SELECT prev, next FROM relayed WHERE key_id = ?'),
    deleteRelay: db.prepare('DELETE FROM relayed WHERE key_id = ?'),
    expireRelays: db.prepare('DELETE FROM relayed WHERE at < ?'),
    knownHere: db.prepare(
      'SELECT 1 AS one FROM keys WHERE key_id = @id UNION ALL SELECT 1 FROM relayed WHERE key_id = @id UNION ALL SELECT 1 FROM cancelled WHERE key_id = @id AND (kme = @kme OR kme IS NULL)',
    ),
    getPrefs: db.prepare('SELECT name, value FROM preferences WHERE sae = ?'),
    setPref: db.prepare(
      'INSERT INTO preferences (sae, name, value) VALUES (?, ?, ?) ON CONFLICT (sae, name) DO UPDATE SET value = excluded.value',
    ),
  };
}
