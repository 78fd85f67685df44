import { QksError } from '../domain/errors.js';
import { shareKey, type RowIntegrity } from './key-store.js';
import { keyIdentity } from './sqlite-schema.js';
import type { KeyRow } from './sqlite-rows.js';
import type { Statements } from './sqlite-statements.js';

// The checks that bind the store's rows to their use under the master key (RowIntegrity, the
// barrier), kept apart from the store's writes: a row changed or put back outside QKS is refused.

/** The store's statements the marks run. */
type MarkStatements = Pick<Statements, 'getMark' | 'setMark' | 'lastSeq' | 'newestBlock' | 'discardBlocks'>;

/**
 * The consumed-block mark of each share: the highest block number cut or discarded, kept in the
 * `marks` table under the master key's MAC, so that a block consumed once is never served again,
 * even if its row comes back from a copy of the file.
 */
export class ConsumedBlockMarks {
  readonly #stmt: MarkStatements;
  readonly #integrity: RowIntegrity;
  /** Told how many blocks of a share went when a share with no mark yet drops what it cannot trust. */
  readonly #onDiscarded: (linkId: string, owner: string, count: number) => void;
  /**
   * The highest mark of each share read or written by this process. It may run ahead of the file
   * when a write is undone (its blocks are then skipped: lost, never re-issued).
   */
  readonly #seen = new Map<string, { seq: number; tag: Buffer }>();

  constructor(
    stmt: MarkStatements,
    integrity: RowIntegrity,
    onDiscarded: (linkId: string, owner: string, count: number) => void,
  ) {
    this.#stmt = stmt;
    this.#integrity = integrity;
    this.#onDiscarded = onDiscarded;
  }

  /**
   * The highest number of the share consumed so far, checked against its MAC. With no mark yet (a
   * new share, an upgraded file, or a deleted row) it starts at the highest of `floor` (below what
   * the caller adds), the link's last block number and the newest block present: blocks already
   * here without a mark are not trusted.
   */
  get(linkId: string, owner: string, floor = -1): number {
    const key = shareKey(linkId, owner);
    const seen = this.#seen.get(key);
    const row = this.#stmt.getMark.get(linkId, owner);
    if (row) {
      const known = seen !== undefined && seen.seq === row.seq && seen.tag.equals(row.tag);
      if (!known && !this.#integrity.verify('mark', [linkId, owner, row.seq], row.tag)) {
        throw new QksError('KEY_DATA_ACCESS_ERROR', `the consumed-block mark of link ${linkId} fails its check`);
      }
      // A row put back to an older value (with its older, valid MAC) does not lower the mark.
      if (seen && seen.seq > row.seq) return seen.seq;
      if (!known) this.#seen.set(key, { seq: row.seq, tag: row.tag });
      return row.seq;
    }
    // Nothing at or below the link's last block number arrives again (LinkPool keeps to that).
    const lastSeq = this.#stmt.lastSeq.get(linkId)?.last_seq ?? -1;
    const mark = Math.max(floor, lastSeq, this.#stmt.newestBlock.get(linkId, owner)?.seq ?? -1, seen?.seq ?? -1);
    this.#onDiscarded(linkId, owner, this.#stmt.discardBlocks.run(linkId, owner, mark + 1).changes);
    this.set(linkId, owner, mark);
    return mark;
  }

  set(linkId: string, owner: string, seq: number): void {
    const tag = this.#integrity.tag('mark', [linkId, owner, seq]);
    this.#stmt.setMark.run(linkId, owner, seq, tag);
    this.#seen.set(shareKey(linkId, owner), { seq, tag });
  }
}

/** The MAC a new key row carries: its ID, material and owners as they were when it was cut. */
export function keyRowTag(
  integrity: RowIntegrity,
  key: { keyId: string; sizeBits: number; masterSae: string; pendingSlaves: readonly string[] },
  linkId: string,
  seqs: string,
  mask: Buffer | null,
): Buffer {
  return integrity.tag(
    'key',
    keyIdentity(key.keyId, linkId, key.sizeBits, seqs, key.masterSae, [...key.pendingSlaves], mask),
  );
}

/** Refuses a key row whose owners or material differ from what was sealed when it was cut. */
export function checkKeyRow(integrity: RowIntegrity, row: KeyRow): void {
  const slaves = [...(JSON.parse(row.pending) as string[]), ...(JSON.parse(row.delivered) as string[])];
  const identity = keyIdentity(row.key_id, row.link, row.size_bits, row.seqs, row.master, slaves, row.mask);
  if (!integrity.verify('key', identity, row.tag)) {
    throw new QksError('KEY_DATA_ACCESS_ERROR', `key ${row.key_id} fails its ownership check`);
  }
}
