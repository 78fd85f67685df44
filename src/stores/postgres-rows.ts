import { QksError } from '../domain/errors.js';
import { shareKey, type RowIntegrity } from './key-store.js';
import { ReservedCuts, type ReturnPlan } from './reserved-cuts.js';
import { sql } from './postgres-statements.js';
import type { Tx } from './postgres-tx.js';

// The PostgreSQL store's shared state of each share, read and written inside the caller's
// transaction under the share's lock: its consumed-block mark (under the master key's MAC, as in
// sqlite-integrity.ts) and its reserved cuts still out. Nothing of it is cached in the process:
// another replica may have changed it since.

export interface Share {
  readonly link: string;
  readonly owner: string;
}

/** Sorted and without repeats: shares are always locked in this order, so two callers never deadlock. */
export function sortedShares(shares: readonly Share[]): Share[] {
  const byKey = new Map(shares.map((s) => [shareKey(s.link, s.owner), s]));
  return [...byKey.keys()].sort().map((k) => byKey.get(k)!);
}

export async function lockShares(tx: Tx, shares: readonly Share[]): Promise<Share[]> {
  const sorted = sortedShares(shares);
  for (const s of sorted) await sql.lockShare(tx, s.link, s.owner);
  return sorted;
}

/**
 * The highest number of the share consumed so far, checked against its MAC. With no mark yet (a
 * new share, or a deleted row) it starts at the highest of `floor`, the link's last block number and
 * the newest block present: blocks already here without a mark are not trusted, and go.
 */
export async function markOf(
  tx: Tx,
  integrity: RowIntegrity,
  link: string,
  owner: string,
  floor = -1,
): Promise<number> {
  const row = await sql.getMark(tx, link, owner);
  if (row) {
    if (!integrity.verify('mark', [link, owner, row.seq], row.tag)) {
      throw new QksError('KEY_DATA_ACCESS_ERROR', `the consumed-block mark of link ${link} fails its check`);
    }
    return row.seq;
  }
  const mark = Math.max(floor, (await sql.lastSeq(tx, link)) ?? -1, (await sql.newestBlock(tx, link, owner)) ?? -1);
  await sql.discardBlocks(tx, link, owner, mark + 1);
  await setMark(tx, integrity, link, owner, mark);
  return mark;
}

export function setMark(tx: Tx, integrity: RowIntegrity, link: string, owner: string, seq: number) {
  return sql.setMark(tx, link, owner, seq, integrity.tag('mark', [link, owner, seq]));
}

interface CutRow {
  readonly id: number;
  readonly link: string;
  readonly owner: string;
  readonly keyIds: readonly string[];
  readonly markBefore: number;
  readonly max: number;
}

/** What a cut's MAC covers: all it says, so that a cut forged or edited cannot move a mark back. */
const cutFields = (c: CutRow, askedBack: boolean) => [c.link, c.owner, [...c.keyIds], c.markBefore, c.max, askedBack];

/** Records a reserved cut, under its MAC. */
export function addCut(tx: Tx, integrity: RowIntegrity, c: Omit<CutRow, 'id'>, replica: string) {
  const tag = integrity.tag('cut', cutFields({ ...c, id: 0 }, false));
  return sql.addCut(tx, c, tag, replica);
}

/** The reserved cuts of some shares, loaded into a ReservedCuts with their marks, to plan returns. */
export class LoadedCuts {
  readonly cuts = new ReservedCuts();
  readonly marks = new Map<string, number>();
  readonly #rows: CutRow[] = [];
  readonly #integrity: RowIntegrity;

  private constructor(integrity: RowIntegrity) {
    this.#integrity = integrity;
  }

  /** Loads the locked shares' cuts and marks. */
  static async load(tx: Tx, integrity: RowIntegrity, shares: readonly Share[]): Promise<LoadedCuts> {
    const loaded = new LoadedCuts(integrity);
    for (const { link, owner } of shares) {
      const key = shareKey(link, owner);
      loaded.marks.set(key, await markOf(tx, integrity, link, owner));
      for (const row of await sql.cutsOf(tx, link, owner)) {
        const cut = { id: row.id, link, owner, keyIds: row.key_ids, markBefore: row.mark_before, max: row.max_seq };
        if (!integrity.verify('cut', cutFields(cut, row.asked_back), row.tag))
          throw new QksError('KEY_DATA_ACCESS_ERROR', `a reserved cut of link ${link} fails its check`);
        loaded.cuts.add(key, row.key_ids, row.mark_before, row.max_seq, row.asked_back);
        loaded.#rows.push(cut);
      }
    }
    return loaded;
  }

  readonly markOfShare = (share: string): number => this.marks.get(share) ?? -1;

  /** Writes back what settle/return changed: cuts gone, and cuts now waiting to go back (`returned`). */
  async save(tx: Tx, returned: readonly string[] = []): Promise<void> {
    const gone = this.#rows.filter((r) => !this.cuts.has(r.keyIds[0]!)).map((r) => r.id);
    const asked = new Set(returned);
    const waiting = this.#rows.filter((r) => this.cuts.has(r.keyIds[0]!) && r.keyIds.some((id) => asked.has(id)));
    if (gone.length > 0) await sql.deleteCuts(tx, gone);
    for (const r of waiting) await sql.setAskedBack(tx, r.id, this.#integrity.tag('cut', cutFields(r, true)));
  }
}

export type { ReturnPlan };
