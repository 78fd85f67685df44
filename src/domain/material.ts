/**
 * How link material becomes keys. A QKD link delivers numbered blocks of identical bits to both of
 * its KMEs. Blocks alternate between the two ends: even sequence numbers belong to the first
 * endpoint, odd ones to the second. A KME cuts keys only from its own blocks and tells the peer
 * which ones it used, so requests served at both ends at once can never use the same material.
 */
export interface LinkEnds {
  readonly linkId: string;
  /** The two KME IDs, in the order the link is configured identically at both ends. */
  readonly endpoints: readonly [string, string];
  readonly blockBits: number;
}

export function ownerOfBlock(link: LinkEnds, seq: number): string {
  return link.endpoints[seq % 2]!;
}

/** A key takes whole blocks; the unused tail of its last block is discarded, never reused. */
export function blocksPerKey(blockBits: number, keyBits: number): number {
  return Math.ceil(keyBits / blockBits);
}

/** Keys of `keyBits` that `blockCount` blocks can still give. */
export function keysFromBlocks(blockBits: number, keyBits: number, blockCount: number): number {
  return Math.floor(blockCount / blocksPerKey(blockBits, keyBits));
}

/** Joins a key's blocks in sequence order and cuts the key to its size. */
export function assembleKey(blocks: readonly Uint8Array[], keyBits: number): Buffer {
  const joined = Buffer.concat(blocks);
  const key = Buffer.from(joined.subarray(0, keyBits / 8));
  joined.fill(0);
  return key;
}

/** Associated data that binds a sealed block to its place, so stored blocks cannot be swapped. */
export const blockAad = (linkId: string, seq: number): string => `qks/block/${linkId}/${seq}`;
