import { createHash } from 'node:crypto';

/**
 * The UUIDs and interface numbers QKS shows in its ETSI GS QKD 015 view (docs/sdn.md). Every one
 * is derived from names the whole network already shares (KME IDs, link IDs, SAE IDs), so that
 * each KME computes its peers' node IDs and the IDs of the links it shares with them without
 * asking anyone, and the same link carries the same qkdl_id at both of its ends. Nothing here is
 * derived from key material.
 */

/** The namespace of every name-based UUID QKS makes for its 015 view (a fixed random UUID). */
export const QKS_SDN_NAMESPACE = '91ed0ea1-a71b-4295-8f09-752eb74d3bc4';

/** A name-based UUID as RFC 9562 §5.5 makes it (version 5: SHA-1 of namespace and name). */
export function uuidV5(name: string, namespace = QKS_SDN_NAMESPACE): string {
  const ns = Buffer.from(namespace.replace(/-/g, ''), 'hex');
  const hash = createHash('sha1').update(ns).update(name, 'utf8').digest().subarray(0, 16);
  hash[6] = (hash[6]! & 0x0f) | 0x50;
  hash[8] = (hash[8]! & 0x3f) | 0x80;
  const hex = hash.toString('hex');
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}

/** A KME's qkdn_id: the same after every restart, and known to its peers. */
export const nodeUuid = (kmeId: string): string => uuidV5(`node:${kmeId}`);

/** A direct QKD link's qkdl_id, the same at both of its ends. */
export const physLinkUuid = (linkId: string): string => uuidV5(`link:${linkId}`);

/** A relay path's qkdl_id (a VIRT link), the same at every KME on the path. */
export const virtLinkUuid = (path: readonly string[]): string => uuidV5(`relay:${path.join('>')}`);

/** The app_id of an SAE pair (or a master and its slaves) this KME has delivered keys to. */
export const pairAppUuid = (server: string, clients: readonly string[]): string =>
  uuidV5(`app:${server}>${[...clients].sort().join(',')}`);

/**
 * A link end's qkdi_id (uint32): the first four bytes of SHA-256 over KME and link ID, so that the
 * far end's qkdi_id is known too. Two ends of one KME colliding is a 1 in 2^32 chance per pair.
 */
export function interfaceId(kmeId: string, linkId: string): number {
  return createHash('sha256').update(`qkdi:${kmeId}:${linkId}`, 'utf8').digest().readUInt32BE(0);
}
