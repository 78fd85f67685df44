import type pg from 'pg';

/**
 * The PostgreSQL store's tables: the SQLite store's layout (sqlite-schema.ts), so that a key row's
 * MAC covers the same fields, plus `cuts`, the reserved cuts still out (reserved-cuts.ts), which
 * the SQLite store keeps in its process but which every replica sharing the database must see, and
 * `leases`. Reserved keys and cuts name the replica that made them (`replica`, '' for a KME of one
 * process): a replica that starts again burns its own reservations, never those of the others.
 */
const SCHEMA_V1 = `
CREATE TABLE blocks (link TEXT NOT NULL, owner TEXT NOT NULL, seq BIGINT NOT NULL, sealed BYTEA NOT NULL,
  PRIMARY KEY (link, owner, seq));
CREATE TABLE links (link TEXT PRIMARY KEY, last_seq BIGINT NOT NULL);
-- The highest block number of each share consumed (cut or discarded), under the master key's MAC.
CREATE TABLE marks (link TEXT NOT NULL, owner TEXT NOT NULL, seq BIGINT NOT NULL, tag BYTEA NOT NULL,
  PRIMARY KEY (link, owner));
-- tag: the MAC of the key's identity (ID, link, size, blocks, master, slaves) under the master key.
CREATE TABLE keys (
  key_id TEXT PRIMARY KEY, link TEXT NOT NULL, size_bits INTEGER NOT NULL,
  seqs TEXT NOT NULL, sealed BYTEA NOT NULL, master TEXT NOT NULL, pending TEXT NOT NULL, delivered TEXT NOT NULL DEFAULT '[]',
  peer TEXT, state TEXT NOT NULL, created_at BIGINT NOT NULL, cut_by TEXT, mask BYTEA, tag BYTEA NOT NULL,
  replica TEXT NOT NULL DEFAULT '');
CREATE INDEX keys_by_age ON keys (state, created_at);
CREATE TABLE preferences (sae TEXT NOT NULL, name TEXT NOT NULL, value TEXT NOT NULL, PRIMARY KEY (sae, name));
CREATE TABLE outbox (id BIGSERIAL PRIMARY KEY, peer TEXT NOT NULL, key_ids TEXT NOT NULL);
-- kme: the KME that cancelled a key ID not known here yet (only it may claim the ID later).
CREATE TABLE cancelled (key_id TEXT PRIMARY KEY, at BIGINT NOT NULL, kme TEXT);
CREATE INDEX cancelled_by_kme ON cancelled (kme, at);
CREATE TABLE relayed (key_id TEXT PRIMARY KEY, prev TEXT NOT NULL, next TEXT NOT NULL, at BIGINT NOT NULL);
-- Reserved cuts still out, oldest first per share: mark_before, max_seq and asked_back (returning)
-- as in reserved-cuts.ts; tag: their MAC under the master key (a cut decides where a mark goes back to).
CREATE TABLE cuts (id BIGSERIAL PRIMARY KEY, link TEXT NOT NULL, owner TEXT NOT NULL, key_ids TEXT[] NOT NULL,
  mark_before BIGINT NOT NULL, max_seq BIGINT NOT NULL, asked_back BOOLEAN NOT NULL DEFAULT false, tag BYTEA NOT NULL,
  replica TEXT NOT NULL DEFAULT '');
CREATE INDEX cuts_by_share ON cuts (link, owner, id);
CREATE INDEX cuts_by_key ON cuts USING GIN (key_ids);
-- Work with one owner among replicas (leases.ts); expires by the database's clock, the same for all.
CREATE TABLE leases (name TEXT PRIMARY KEY, holder TEXT NOT NULL, expires TIMESTAMPTZ NOT NULL);
`;

/** Each step moves the schema from version i to i + 1; later versions append steps. */
const MIGRATIONS: readonly string[] = [SCHEMA_V1];

/** The schema version this code writes. */
export const PG_SCHEMA_VERSION = MIGRATIONS.length;

/** The advisory lock every migration holds: replicas starting at once migrate one after another. */
const MIGRATION_LOCK = 0x514b535f6d6967n; // "QKS_mig"

export class PgSchemaError extends Error {
  override name = 'PgSchemaError';
}

/**
 * Brings the database to PG_SCHEMA_VERSION in one transaction under an advisory lock, so that
 * several replicas starting together migrate it once; a database of a later version is refused.
 * Returns the version found before.
 */
export async function migrate(client: pg.PoolClient): Promise<number> {
  await client.query('BEGIN');
  try {
    await client.query('SELECT pg_advisory_xact_lock($1)', [MIGRATION_LOCK.toString()]);
    await client.query('CREATE TABLE IF NOT EXISTS qks_schema (version INTEGER NOT NULL, migrated_at BIGINT NOT NULL)');
    const found = Number((await client.query('SELECT max(version) AS v FROM qks_schema')).rows[0]?.v ?? 0);
    if (found > PG_SCHEMA_VERSION) {
      throw new PgSchemaError(`the database has QKS schema ${found}, newer than this QKS (${PG_SCHEMA_VERSION})`);
    }
    for (let v = found; v < PG_SCHEMA_VERSION; v++) {
      await client.query(MIGRATIONS[v]!);
      await client.query('INSERT INTO qks_schema (version, migrated_at) VALUES ($1, $2)', [v + 1, Date.now()]);
    }
    await client.query('COMMIT');
    return found;
  } catch (err) {
    await client.query('ROLLBACK').catch(() => undefined);
    throw err;
  }
}
