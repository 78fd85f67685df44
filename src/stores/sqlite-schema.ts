import type Database from 'better-sqlite3';

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
  peer TEXT, state TEXT NOT NULL, created_at INTEGER NOT NULL, tag BLOB NOT NULL) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS outbox (id INTEGER PRIMARY KEY AUTOINCREMENT, peer TEXT NOT NULL, key_ids TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS cancelled (key_id TEXT PRIMARY KEY, at INTEGER NOT NULL) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS keys_by_age ON keys (state, created_at);
CREATE TABLE IF NOT EXISTS preferences (sae TEXT NOT NULL, name TEXT NOT NULL, value TEXT NOT NULL,
  PRIMARY KEY (sae, name)) WITHOUT ROWID;
`;

/** The layout and sealing this code writes, in `PRAGMA user_version`; earlier files had 0. */
export const STORE_FORMAT = 2;

export class StoreFormatError extends Error {
  override name = 'StoreFormatError';
}

/**
 * Creates the tables of a new file, or checks that an existing one is of this format. A file of an
 * earlier version is refused rather than migrated: its rows carry no ownership MAC and its blocks
 * were sealed under the earlier key, so nothing in it could be trusted or opened.
 */
export function prepareSchema(db: Database.Database, file: string): void {
  const version = db.pragma('user_version', { simple: true }) as number;
  const tables = (db.prepare("SELECT count(*) AS n FROM sqlite_master WHERE type = 'table'").get() as { n: number }).n;
  if (version === 0 && tables > 0) {
    throw new StoreFormatError(
      `${file} was written by an earlier QKS version (store format 0, this one writes ${STORE_FORMAT}) and ` +
        'cannot be used: its keys are not bound to their owners and its blocks are sealed the earlier way. ' +
        'Stop both KMEs, move the file (and its -wal and -shm) aside, and start again: the links refill it.',
    );
  }
  if (version > STORE_FORMAT) {
    throw new StoreFormatError(`${file} has store format ${version}, newer than this QKS (${STORE_FORMAT})`);
  }
  if (version === 0) {
    db.transaction(() => {
      db.exec(SCHEMA);
      db.pragma(`user_version = ${STORE_FORMAT}`);
    })();
  }
}

/** What a key's MAC covers: who it is for and which material it is; slaves in a fixed order. */
export const keyIdentity = (
  keyId: string,
  link: string,
  sizeBits: number,
  seqs: string,
  master: string,
  slaves: string[],
) => [keyId, link, sizeBits, seqs, master, [...new Set(slaves)].sort()];
