import type { SealedBlock } from './key-store.js';
import type { KeyRow } from './sqlite-rows.js';
import type { Tx } from './postgres-tx.js';

// Every statement the PostgreSQL store runs, each on the transaction's connection. Lists go in as
// arrays (`= ANY($n)`, `unnest`), so that a call costs a round trip per step, not per row.

const rows = async <R>(tx: Tx, text: string, values: unknown[]): Promise<R[]> =>
  (await tx.query(text, values)).rows as R[];
const changes = async (tx: Tx, text: string, values: unknown[]): Promise<number> =>
  (await tx.query(text, values)).rowCount ?? 0;

export const sql = {
  /**
   * Serialises every change to one share (a link's blocks one KME owns) across all connections:
   * held to the end of the transaction. Callers take several in sorted order.
   */
  lockShare: (tx: Tx, link: string, owner: string) =>
    tx.query('SELECT pg_advisory_xact_lock(hashtext($1), hashtext($2))', [link, owner]),

  addBlocks: (tx: Tx, link: string, owner: string, seqs: number[], sealed: Buffer[]) =>
    changes(
      tx,
      `INSERT INTO blocks (link, owner, seq, sealed) SELECT $1, $2, s, b FROM unnest($3::bigint[], $4::bytea[]) AS t(s, b)
       ON CONFLICT DO NOTHING`,
      [link, owner, seqs, sealed],
    ),
  setLastSeq: (tx: Tx, link: string, seq: number) =>
    tx.query(
      `INSERT INTO links (link, last_seq) VALUES ($1, $2)
       ON CONFLICT (link) DO UPDATE SET last_seq = GREATEST(links.last_seq, excluded.last_seq)`,
      [link, seq],
    ),
  lastSeq: async (tx: Tx, link: string) =>
    (await rows<{ last_seq: number }>(tx, 'SELECT last_seq FROM links WHERE link = $1', [link]))[0]?.last_seq,
  newestBlock: async (tx: Tx, link: string, owner: string) =>
    (
      await rows<{ seq: number | null }>(tx, 'SELECT max(seq) AS seq FROM blocks WHERE link = $1 AND owner = $2', [
        link,
        owner,
      ])
    )[0]?.seq ?? null,
  discardBlocks: (tx: Tx, link: string, owner: string, below: number) =>
    changes(tx, 'DELETE FROM blocks WHERE link = $1 AND owner = $2 AND seq < $3', [link, owner, below]),
  oldestBlocks: (tx: Tx, link: string, owner: string, above: number, limit: number) =>
    rows<SealedBlock>(
      tx,
      'SELECT seq, sealed FROM blocks WHERE link = $1 AND owner = $2 AND seq > $3 ORDER BY seq LIMIT $4',
      [link, owner, above, limit],
    ),
  getBlocks: (tx: Tx, link: string, owner: string, seqs: readonly number[]) =>
    rows<SealedBlock>(tx, 'SELECT seq, sealed FROM blocks WHERE link = $1 AND owner = $2 AND seq = ANY($3)', [
      link,
      owner,
      seqs,
    ]),
  deleteBlocks: (tx: Tx, link: string, owner: string, seqs: readonly number[]) =>
    changes(tx, 'DELETE FROM blocks WHERE link = $1 AND owner = $2 AND seq = ANY($3)', [link, owner, seqs]),
  /** Puts a returned key's blocks back (none was added again meanwhile: their numbers are above the mark). */
  returnBlocks: (tx: Tx, link: string, owner: string, blocks: readonly SealedBlock[]) =>
    changes(
      tx,
      `INSERT INTO blocks (link, owner, seq, sealed) SELECT $1, $2, s, b FROM unnest($3::bigint[], $4::bytea[]) AS t(s, b)
       ON CONFLICT DO NOTHING`,
      [link, owner, blocks.map((b) => b.seq), blocks.map((b) => b.sealed)],
    ),

  getMark: async (tx: Tx, link: string, owner: string) =>
    (
      await rows<{ seq: number; tag: Buffer }>(tx, 'SELECT seq, tag FROM marks WHERE link = $1 AND owner = $2', [
        link,
        owner,
      ])
    )[0],
  setMark: (tx: Tx, link: string, owner: string, seq: number, tag: Buffer) =>
    tx.query(
      `INSERT INTO marks (link, owner, seq, tag) VALUES ($1, $2, $3, $4)
       ON CONFLICT (link, owner) DO UPDATE SET seq = excluded.seq, tag = excluded.tag`,
      [link, owner, seq, tag],
    ),

  insertKey: (tx: Tx, r: Omit<KeyRow, 'delivered'>, replica: string) =>
    tx.query(
      `INSERT INTO keys (key_id, link, size_bits, seqs, sealed, master, pending, peer, state, created_at, cut_by, mask, tag, replica)
       VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)`,
      [
        r.key_id,
        r.link,
        r.size_bits,
        r.seqs,
        r.sealed,
        r.master,
        r.pending,
        r.peer,
        r.state,
        r.created_at,
        r.cut_by,
        r.mask,
        r.tag,
        replica,
      ],
    ),
  /** The keys named, locked until the transaction ends (in ID order, so two callers never deadlock). */
  lockKeys: (tx: Tx, ids: readonly string[]) =>
    rows<KeyRow>(tx, 'SELECT * FROM keys WHERE key_id = ANY($1) ORDER BY key_id FOR UPDATE', [ids]),
  /** The shares the named keys were cut from. */
  sharesOfKeys: (tx: Tx, ids: readonly string[]) =>
    rows<{ link: string; owner: string }>(
      tx,
      `SELECT link, cut_by AS owner FROM keys WHERE key_id = ANY($1) AND cut_by IS NOT NULL
       UNION SELECT link, owner FROM cuts WHERE key_ids && $1::text[]`,
      [ids],
    ),
  /** The shares of one replica's reservations. */
  reservedShares: (tx: Tx, replica: string) =>
    rows<{ link: string; owner: string }>(
      tx,
      `SELECT DISTINCT link, cut_by AS owner FROM keys WHERE state = 'reserved' AND cut_by IS NOT NULL AND replica = $1
       UNION SELECT link, owner FROM cuts WHERE replica = $1`,
      [replica],
    ),
  reservedKeys: (tx: Tx, replica: string) =>
    rows<KeyRow>(tx, "SELECT * FROM keys WHERE state = 'reserved' AND replica = $1 ORDER BY key_id FOR UPDATE", [
      replica,
    ]),
  /** IDs of `ids` taken here already: a key, or cancelled by `kme` (or by some KME, before that was recorded); with `relays`, also a relay. */
  knownIds: async (tx: Tx, ids: readonly string[], kme: string, relays: boolean) =>
    new Set(
      (
        await rows<{ key_id: string }>(
          tx,
          `SELECT key_id FROM keys WHERE key_id = ANY($1)
           UNION SELECT key_id FROM cancelled WHERE key_id = ANY($1) AND (kme = $2 OR kme IS NULL)
           ${relays ? 'UNION SELECT key_id FROM relayed WHERE key_id = ANY($1)' : ''}`,
          [ids, kme],
        )
      ).map((r) => r.key_id),
    ),
  /** Known here at all, as a key or a cancel by anyone: a new key may not take the ID. */
  takenIds: async (tx: Tx, ids: readonly string[]) =>
    (
      await rows(
        tx,
        'SELECT 1 FROM keys WHERE key_id = ANY($1) UNION ALL SELECT 1 FROM cancelled WHERE key_id = ANY($1)',
        [ids],
      )
    ).length > 0,
  deleteKeys: (tx: Tx, ids: readonly string[]) => changes(tx, 'DELETE FROM keys WHERE key_id = ANY($1)', [ids]),
  /** A reserved key with no local slave goes; returns whether it did. */
  dropDelivered: (tx: Tx, id: string) =>
    changes(tx, "DELETE FROM keys WHERE key_id = $1 AND state = 'reserved' AND pending = '[]'", [id]),
  setReady: (tx: Tx, id: string) =>
    tx.query("UPDATE keys SET state = 'ready' WHERE key_id = $1 AND state = 'reserved'", [id]),
  setPending: (tx: Tx, id: string, pending: string, delivered: string) =>
    tx.query('UPDATE keys SET pending = $2, delivered = $3 WHERE key_id = $1', [id, pending, delivered]),
  countKeys: (tx: Tx) =>
    rows<{ state: 'reserved' | 'ready'; n: number }>(tx, 'SELECT state, count(*) AS n FROM keys GROUP BY state', []),

  remember: (tx: Tx, ids: readonly string[], at: number, kme: string) =>
    tx.query('INSERT INTO cancelled (key_id, at, kme) SELECT unnest($1::text[]), $2, $3 ON CONFLICT DO NOTHING', [
      ids,
      at,
      kme,
    ]),
  forgetOldCancels: (tx: Tx, kme: string, keep: number) =>
    tx.query(
      `DELETE FROM cancelled WHERE kme = $1 AND key_id IN
       (SELECT key_id FROM cancelled WHERE kme = $1 ORDER BY at DESC, key_id OFFSET $2)`,
      [kme, keep],
    ),
  expireKeys: (tx: Tx, time: number) =>
    changes(tx, "DELETE FROM keys WHERE state = 'ready' AND created_at < $1", [time]),
  expireCancelled: (tx: Tx, time: number) => tx.query('DELETE FROM cancelled WHERE at < $1', [time]),
  expireRelays: (tx: Tx, time: number) => tx.query('DELETE FROM relayed WHERE at < $1', [time]),

  enqueue: (tx: Tx, peer: string, ids: readonly string[]) =>
    tx.query('INSERT INTO outbox (peer, key_ids) VALUES ($1, $2)', [peer, JSON.stringify(ids)]),
  listOutbox: (tx: Tx, limit: number) =>
    rows<{ id: number; peer: string; key_ids: string }>(
      tx,
      'SELECT id, peer, key_ids FROM outbox ORDER BY id LIMIT $1',
      [limit],
    ),
  ackOutbox: (tx: Tx, ids: readonly number[]) => tx.query('DELETE FROM outbox WHERE id = ANY($1)', [ids]),

  insertRelays: (tx: Tx, ids: readonly string[], prev: string, next: string, at: number) =>
    tx.query('INSERT INTO relayed (key_id, prev, next, at) SELECT unnest($1::text[]), $2, $3, $4', [
      ids,
      prev,
      next,
      at,
    ]),
  lockRelays: (tx: Tx, ids: readonly string[]) =>
    rows<{ key_id: string; prev: string; next: string }>(
      tx,
      'SELECT key_id, prev, next FROM relayed WHERE key_id = ANY($1) ORDER BY key_id FOR UPDATE',
      [ids],
    ),
  deleteRelays: (tx: Tx, ids: readonly string[]) => tx.query('DELETE FROM relayed WHERE key_id = ANY($1)', [ids]),

  getPrefs: (tx: Tx, sae: string) =>
    rows<{ name: string; value: string }>(tx, 'SELECT name, value FROM preferences WHERE sae = $1', [sae]),
  setPref: (tx: Tx, sae: string, name: string, value: string) =>
    tx.query(
      `INSERT INTO preferences (sae, name, value) VALUES ($1, $2, $3)
       ON CONFLICT (sae, name) DO UPDATE SET value = excluded.value`,
      [sae, name, value],
    ),

  /** The reserved cuts still out of the share, oldest first. */
  cutsOf: (tx: Tx, link: string, owner: string) =>
    rows<{ id: number; key_ids: string[]; mark_before: number; max_seq: number; asked_back: boolean; tag: Buffer }>(
      tx,
      'SELECT id, key_ids, mark_before, max_seq, asked_back, tag FROM cuts WHERE link = $1 AND owner = $2 ORDER BY id',
      [link, owner],
    ),
  addCut: (
    tx: Tx,
    c: { link: string; owner: string; keyIds: readonly string[]; markBefore: number; max: number },
    tag: Buffer,
    replica: string,
  ) =>
    tx.query(
      'INSERT INTO cuts (link, owner, key_ids, mark_before, max_seq, tag, replica) VALUES ($1, $2, $3, $4, $5, $6, $7)',
      [c.link, c.owner, c.keyIds, c.markBefore, c.max, tag, replica],
    ),
  deleteCuts: (tx: Tx, ids: readonly number[]) => tx.query('DELETE FROM cuts WHERE id = ANY($1)', [ids]),
  setAskedBack: (tx: Tx, id: number, tag: Buffer) =>
    tx.query('UPDATE cuts SET asked_back = true, tag = $2 WHERE id = $1', [id, tag]),
  clearCuts: (tx: Tx, replica: string) => tx.query('DELETE FROM cuts WHERE replica = $1', [replica]),

  /** Takes or renews a lease; the holder's name comes back when it holds it now. */
  holdLease: (tx: Tx, name: string, holder: string, ttlMs: number) =>
    rows<{ holder: string }>(
      tx,
      `INSERT INTO leases (name, holder, expires) VALUES ($1, $2, clock_timestamp() + $3 * interval '1 millisecond')
       ON CONFLICT (name) DO UPDATE SET holder = excluded.holder, expires = excluded.expires
         WHERE leases.holder = excluded.holder OR leases.expires <= clock_timestamp()
       RETURNING holder`,
      [name, holder, ttlMs],
    ),
  releaseLease: (tx: Tx, name: string, holder: string) =>
    tx.query('DELETE FROM leases WHERE name = $1 AND holder = $2', [name, holder]),
  leaseHolder: (tx: Tx, name: string) =>
    rows<{ holder: string }>(tx, 'SELECT holder FROM leases WHERE name = $1 AND expires > clock_timestamp()', [name]),
};
