import type Database from 'better-sqlite3';

/** Tables an upgrade keeps (created first when an earlier file lacks them). */
const SIDE_TABLES = `
CREATE TABLE IF NOT EXISTS outbox (id INTEGER PRIMARY KEY AUTOINCREMENT, peer TEXT NOT NULL, key_ids TEXT NOT NULL);
-- kme: the KME that cancelled a key ID not known here yet (only it may claim the ID later).
CREATE TABLE IF NOT EXISTS cancelled (key_id TEXT PRIMARY KEY, at INTEGER NOT NULL, kme TEXT) WITHOUT ROWID;
`;

// Blocks are keyed by owner first: every lookup names the owner (it follows from the number),
// and one B-tree costs half the writes of a table and an index by owner.
const SCHEMA = `
CREATE TABLE IF NOT EXISTS blocks (
  link TEXT NOT NULL, owner TEXT NOT NULL, seq INTEGER NOT NULL, sealed BLOB NOT NULL,
  PRIMARY KEY (link, owner, seq)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS links (link TEXT PRIMARY KEY, last_seq INTEGER NOT NULL);
-- The highest block number of each share consumed (cut or discarded), under the master key's MAC.
CREATE TABLE IF NOT EXISTS marks (link TEXT NOT NULL, owner TEXT NOT NULL, seq INTEGER NOT NULL, tag BLOB NOT NULL,
  PRIMARY KEY (link, owner)) WITHOUT ROWID;
-- tag: the MAC of the key's identity (ID, link, size, blocks, master, slaves) under the master key.
CREATE TABLE IF NOT EXISTS keys (
  key_id TEXT PRIMARY KEY, link TEXT NOT NULL, size_bits INTEGER NOT NULL,
  seqs TEXT NOT NULL, sealed BLOB NOT NULL, master TEXT NOT NULL, pending TEXT NOT NULL, delivered TEXT NOT NULL DEFAULT '[]',
  peer TEXT, state TEXT NOT NULL, created_at INTEGER NOT NULL, cut_by TEXT, tag BLOB NOT NULL) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS keys_by_age ON keys (state, created_at);
CREATE TABLE IF NOT EXISTS preferences (sae TEXT NOT NULL, name TEXT NOT NULL, value TEXT NOT NULL,
  PRIMARY KEY (sae, name)) WITHOUT ROWID;
${SIDE_TABLES}`;

/** The layout and sealing this code writes, in `PRAGMA user_version`; earlier files had 0. */
export const STORE_FORMAT = 2;

export class StoreFormatError extends Error {
  override name = 'StoreFormatError';
}

/** What opening a file of an earlier format threw away. */
export interface StoreUpgrade {
  readonly fromFormat: number;
  /** Keys not yet fetched by all their slaves: gone (reserved ones with a cancel queued for the peer). */
  readonly keysDropped: number;
  readonly blocksDropped: number;
}

const tableExists = (db: Database.Database, name: string) =>
  db.prepare("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?").get(name) !== undefined;

/**
 * Moves a file of format 0 (before keys were bound to their owners) to this format, in one
 * transaction. Its blocks and keys cannot be trusted (no MACs) nor opened (sealed under the earlier
 * key), so they go: reserved keys as after a crash, with a cancel queued for the peer; keys waiting
 * for slaves are forgotten and their IDs remembered as cancelled. The links' last block numbers
 * stay, so every link continues after them and no material used before comes back; the outbox,
 * cancellations and preferences stay too.
 */
function upgradeFromFormat0(db: Database.Database): StoreUpgrade {
  return db.transaction(() => {
    let keysDropped = 0;
    if (tableExists(db, 'keys')) {
      db.exec(SIDE_TABLES);
      const keys = db.prepare('SELECT key_id, peer, state FROM keys').all() as Array<{
        key_id: string;
        peer: string | null;
        state: string;
      }>;
      const byPeer = new Map<string, string[]>();
      for (const k of keys) {
        if (k.state === 'reserved' && k.peer) byPeer.set(k.peer, [...(byPeer.get(k.peer) ?? []), k.key_id]);
      }
      const enqueue = db.prepare('INSERT INTO outbox (peer, key_ids) VALUES (?, ?)');
      for (const [peer, ids] of byPeer) enqueue.run(peer, JSON.stringify(ids));
      const remember = db.prepare('INSERT OR IGNORE INTO cancelled (key_id, at) VALUES (?, ?)');
      for (const k of keys) remember.run(k.key_id, Date.now());
      keysDropped = keys.length;
      db.exec('DROP TABLE keys');
    }
    let blocksDropped = 0;
    if (tableExists(db, 'blocks')) {
      blocksDropped = (db.prepare('SELECT count(*) AS n FROM blocks').get() as { n: number }).n;
      db.exec('DROP TABLE blocks');
    }
    db.exec(SCHEMA);
    db.pragma(`user_version = ${STORE_FORMAT}`);
    return { fromFormat: 0, keysDropped, blocksDropped };
  })();
}

/**
 * Creates the tables of a new file, moves one of format 0 over (above), or checks that an existing
 * one is of this format; a file of a later format is refused. Returns what an upgrade threw away.
 */
export function prepareSchema(db: Database.Database, file: string): StoreUpgrade | null {
  const version = db.pragma('user_version', { simple: true }) as number;
  if (version > STORE_FORMAT) {
    throw new StoreFormatError(`${file} has store format ${version}, newer than this QKS (${STORE_FORMAT})`);
  }
  if (version === STORE_FORMAT) return null;
  const tables = (db.prepare("SELECT count(*) AS n FROM sqlite_master WHERE type = 'table'").get() as { n: number }).n;
  if (tables > 0) return upgradeFromFormat0(db);
  db.transaction(() => {
    db.exec(SCHEMA);
    db.pragma(`user_version = ${STORE_FORMAT}`);
  })();
  return null;
}

/**
 * Columns and tables added since the first release: who cut a key, who cancelled a remembered key
 * ID, and the keys relayed through this KME (no material: where each came from and went on to).
 */
export function addColumns(db: Database.Database): void {
  db.exec(
    'CREATE TABLE IF NOT EXISTS relayed (key_id TEXT PRIMARY KEY, prev TEXT NOT NULL, next TEXT NOT NULL, at INTEGER NOT NULL) WITHOUT ROWID',
  );
  const has = (table: string, column: string) =>
    db
      .prepare<[string], { name: string }>('SELECT name FROM pragma_table_info(?)')
      .all(table)
      .some((c) => c.name === column);
  if (!has('keys', 'cut_by')) db.exec('ALTER TABLE keys ADD COLUMN cut_by TEXT');
  if (!has('cancelled', 'kme')) db.exec('ALTER TABLE cancelled ADD COLUMN kme TEXT');
  if (!has('keys', 'mask')) db.exec('ALTER TABLE keys ADD COLUMN mask BLOB');
  db.exec('CREATE INDEX IF NOT EXISTS cancelled_by_kme ON cancelled (kme, at)');
}

/**
 * What a key's MAC covers: who it is for and which material it is (its blocks, and the mask of a
 * key relayed forward); slaves in a fixed order.
 */
export const keyIdentity = (
  keyId: string,
  link: string,
  sizeBits: number,
  seqs: string,
  master: string,
  slaves: string[],
  mask: Buffer | null,
) => [keyId, link, sizeBits, seqs, master, [...new Set(slaves)].sort(), ...(mask ? [mask.toString('base64')] : [])];

/** The `next` column of `relayed`: one KME ID, or a JSON list when a relay went on to several. */
export const encodeNextKmes = (kmes: readonly string[]) => (kmes.length === 1 ? kmes[0]! : JSON.stringify(kmes));
export const decodeNextKmes = (next: string): string[] =>
  next.startsWith('[') ? (JSON.parse(next) as string[]) : [next];
