import type { KeyRecord, KeyState, SealedBlock } from './key-store.js';

/** A row of the `keys` table, as SQLite returns it. */
export interface KeyRow {
  key_id: string;
  link: string;
  size_bits: number;
  seqs: string;
  sealed: Buffer;
  master: string;
  pending: string;
  delivered: string;
  peer: string | null;
  state: KeyState;
  created_at: number;
  cut_by: string | null;
  mask: Buffer | null;
  tag: Buffer;
}

/** A key's sealed blocks all have one length, so they are kept as one blob and split on read. */
export function joinBlocks(blocks: readonly SealedBlock[]): Buffer {
  return blocks.length === 1 ? blocks[0]!.sealed : Buffer.concat(blocks.map((b) => b.sealed));
}

export function toRecord(row: KeyRow): KeyRecord {
  const seqs = JSON.parse(row.seqs) as number[];
  const width = row.sealed.length / seqs.length;
  return {
    keyId: row.key_id,
    linkId: row.link,
    sizeBits: row.size_bits,
    blocks: seqs.map((seq, i) => ({ seq, sealed: row.sealed.subarray(i * width, (i + 1) * width) })),
    masterSae: row.master,
    pendingSlaves: JSON.parse(row.pending) as string[],
    deliveredSlaves: JSON.parse(row.delivered) as string[],
    peerKme: row.peer,
    state: row.state,
    createdAt: row.created_at,
    ...(row.mask ? { mask: row.mask } : {}),
  };
}
