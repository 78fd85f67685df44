/**
 * The key store contract. Stores hold only sealed (encrypted) material: the barrier above them
 * does all encryption, so a store never sees a key in clear. Every method is one atomic step;
 * the KME's invariants (a key ID means the same bytes everywhere, each key delivered at most once)
 * rest on that. Every backend must pass test/stores/key-store-conformance.ts.
 */

/**
 * A MAC under the master key (the barrier), with which a store binds its rows to their use: a key
 * to its ID, link, blocks, size, master and slaves; a link's mark of consumed blocks to its value.
 * A row edited or put back by someone without the master key then fails its check.
 */
export interface RowIntegrity {
  tag(kind: string, fields: readonly unknown[]): Buffer;
  verify(kind: string, fields: readonly unknown[], tag: Uint8Array): boolean;
}

export interface SealedBlock {
  readonly seq: number;
  readonly sealed: Buffer;
}

export interface IncomingBlock extends SealedBlock {
  /** The KME that may cut keys from this block (see domain/material.ts). */
  readonly owner: string;
}

export type KeyState = 'reserved' | 'ready';

export interface KeyRecord {
  readonly keyId: string;
  readonly linkId: string;
  readonly sizeBits: number;
  readonly blocks: readonly SealedBlock[];
  readonly masterSae: string;
  /** Slaves that still have to fetch this key from this KME. */
  readonly pendingSlaves: readonly string[];
  /** Slaves that fetched it already: asking again is "not found", not "unauthorized". */
  readonly deliveredSlaves: readonly string[];
  /** The peer KME told of this key, when some slaves are there. */
  readonly peerKme: string | null;
  /** `reserved`: cut for a master, not yet confirmed by the peer; `ready`: waiting for slaves. */
  readonly state: KeyState;
  readonly createdAt: number;
  /**
   * A key sent on by a relay (docs/network.md): the key is its blocks XOR this mask, a one-time
   * pad's ciphertext that says nothing of the key without the sealed blocks. Absent: the blocks.
   */
  readonly mask?: Buffer;
}

export interface NewKey {
  readonly keyId: string;
  readonly sizeBits: number;
  readonly blockCount: number;
  readonly masterSae: string;
  readonly pendingSlaves: readonly string[];
  readonly peerKme: string | null;
  readonly state: KeyState;
}

export interface ClaimedKey {
  readonly keyId: string;
  readonly sizeBits: number;
  readonly seqs: readonly number[];
  readonly masterSae: string;
  readonly pendingSlaves: readonly string[];
}

export type ClaimResult =
  | { readonly ok: true }
  | { readonly ok: false; readonly missingSeqs: readonly number[]; readonly existingKeyIds: readonly string[] };

export type SlaveTakeResult =
  | { readonly ok: true; readonly keys: readonly KeyRecord[] }
  | { readonly ok: false; readonly reason: 'not_found' | 'unauthorized' };

export type CancelResult =
  | { readonly ok: true; readonly removed: number }
  /** Keys here that another KME cut: the whole cancel is refused, nothing changes. */
  | { readonly ok: false; readonly notTheirs: readonly string[] };

/** The map key of one share: the blocks of a link that one KME owns (cuts keys from). */
export const shareKey = (linkId: string, owner: string) => `${linkId}\u0000${owner}`;

/** Most cancelled key IDs remembered per peer KME; the oldest are forgotten first. */
export const MAX_REMEMBERED_CANCELS = 65_536;

/** A key passing through this KME on a relay: the previous hop's blocks it was sent with. */
export interface RelayedKey {
  readonly keyId: string;
  readonly sizeBits: number;
  readonly seqs: readonly number[];
  /** Sent forward: the key XOR those blocks (kept with the key when this KME has slaves of it). */
  readonly mask?: Buffer;
}

/** Slaves at a KME a relay passes through: it keeps the keys for them too. */
export interface KeptRelay {
  readonly masterSae: string;
  readonly pendingSlaves: readonly string[];
}

export type RelayInResult =
  | {
      readonly ok: true;
      /** Each key's blocks, in order, and the blocks of the hop's MAC key: taken from the pool, kept nowhere. */
      readonly keys: readonly (readonly SealedBlock[])[];
      readonly mac: readonly SealedBlock[];
    }
  | { readonly ok: false; readonly missingSeqs: readonly number[]; readonly existingKeyIds: readonly string[] };

export interface OutboxEntry {
  readonly id: number;
  readonly peerKme: string;
  readonly keyIds: readonly string[];
}

export interface KeyCounts {
  readonly reserved: number;
  readonly ready: number;
}

export interface KeyStore {
  /**
   * Adds link blocks (duplicates ignored) and records the last sequence number ingested. A block
   * of a number already consumed (cut into a key or discarded) is never added back.
   */
  addBlocks(linkId: string, blocks: readonly IncomingBlock[], lastSeq: number): Promise<void>;
  lastSeq(linkId: string): Promise<number | null>;
  countBlocks(linkId: string, owner: string): Promise<number>;
  /** Discards one owner's blocks numbered below `seq` (too old to use); returns how many went. */
  discardBlocksBefore(linkId: string, owner: string, seq: number): Promise<number>;

  /**
   * Cuts keys from the owner's oldest blocks; null, changing nothing, when there are too few. Blocks
   * are consumed in order: none numbered at or below one consumed before is ever cut again.
   */
  takeOwnBlocks(linkId: string, owner: string, keys: readonly NewKey[]): Promise<KeyRecord[] | null>;
  /** Records keys the peer cut from its blocks, taking exactly those blocks; all or nothing. */
  claimBlocks(linkId: string, owner: string, keys: readonly ClaimedKey[]): Promise<ClaimResult>;
  /**
   * Cuts `count` of the owner's oldest blocks as one-time pad or MAC key of a relay hop: taken from
   * the pool like a key's, but no key is made of them. null, changing nothing, when there are too few.
   */
  takeOwnPad(linkId: string, owner: string, count: number): Promise<SealedBlock[] | null>;
  /**
   * A relay through this KME: takes the blocks of `owner` (the previous hop) that the keys and the
   * hop's MAC key use, as claimBlocks would, and returns them; all or nothing. Each key ID is
   * recorded, without material, as relayed from `owner` to `nextKmes` (one or more): a key ID known
   * here already (a key, a relay, or cancelled by `owner`) refuses the whole relay, and a later
   * cancel by `owner` is queued on for each of `nextKmes`. With `keep` (slaves here too) the keys
   * are also stored, ready for those slaves, as claimBlocks stores them, each with its mask;
   * `nextKmes` may then be empty.
   */
  relayIn(
    linkId: string,
    owner: string,
    keys: readonly RelayedKey[],
    macSeqs: readonly number[],
    nextKmes: readonly string[],
    keep?: KeptRelay,
  ): Promise<RelayInResult>;
  /** The master has its keys: reserved keys become ready for local slaves, or go. */
  markDelivered(keyIds: readonly string[]): Promise<void>;
  /**
   * Burns reserved keys whose peer confirmation failed, queueing a cancel for the peer, and for the
   * KMEs in `alsoTell` (others the keys were sent to: a multicast's further branches).
   */
  cancelReserved(keyIds: readonly string[], alsoTell?: readonly string[]): Promise<void>;
  /**
   * The reservation provably never reached the peer: reserved keys go and their blocks return to
   * the pool of the KME that cut them, with no cancel queued; returns how many keys went back now.
   * A cut made before another still out waits for that one, and is burned (still without a cancel)
   * if it is consumed instead (reserved-cuts.ts).
   */
  returnReserved(keyIds: readonly string[]): Promise<number>;
  /** After a restart: burns every reserved key (never delivered) and queues cancels; returns how many. */
  burnAllReserved(): Promise<number>;
  /** Delivers keys to one slave, all or nothing; keys go once every slave has them. */
  takeForSlave(masterSae: string, slaveSae: string, keyIds: readonly string[]): Promise<SlaveTakeResult>;
  /**
   * Removes keys the peer `byKme` cancelled (keys relayed from it: their record goes and the cancel
   * is queued for the next hop), and remembers the IDs (at most MAX_REMEMBERED_CANCELS
   * per KME) so that a reservation of them by that KME arriving late is refused as already known.
   * A KME cancels only keys it cut: naming a key another KME cut refuses the whole cancel. Keys
   * stored before the cutting KME was recorded are left alone (they expire).
   */
  cancelKeys(keyIds: readonly string[], byKme: string): Promise<CancelResult>;
  /** Forgets keys still waiting for slaves, relay records and remembered cancellations, from before `time` (ms). */
  expireBefore(time: number): Promise<number>;
  countKeys(): Promise<KeyCounts>;

  listOutbox(limit: number): Promise<OutboxEntry[]>;
  ackOutbox(ids: readonly number[]): Promise<void>;

  getPreferences(sae: string): Promise<Record<string, unknown>>;
  setPreference(sae: string, name: string, value: unknown): Promise<void>;

  close(): Promise<void>;
}
