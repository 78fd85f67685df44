import type { TLSSocket } from 'node:tls';

/**
 * Who is on the other end of a mutually authenticated TLS connection. Certificates issued by
 * `qks init` name their holder in a URI subject alternative name: `urn:qks:sae:<SAE ID>` for an
 * SAE, `urn:qks:kme:<KME ID>` for a KME. A certificate without the expected kind is no one here,
 * so a KME certificate is never taken for an SAE, nor the reverse.
 */
export type EntityKind = 'sae' | 'kme';

export const entityUri = (kind: EntityKind, id: string): string => `urn:qks:${kind}:${id}`;

/** The entity ID of the given kind in a Node `subjectaltname` string, if exactly one is there. */
export function entityFromAltNames(altNames: string | undefined, kind: EntityKind): string | null {
  if (!altNames) return null;
  const prefix = `URI:urn:qks:${kind}:`;
  const ids = altNames
    .split(', ')
    .filter((n) => n.startsWith(prefix))
    .map((n) => n.slice(prefix.length));
  return ids.length === 1 ? ids[0]! : null;
}

const cache = new WeakMap<TLSSocket, string | null>();

/** The authenticated peer of a TLS socket, cached per connection; null when there is none. */
export function peerIdentity(socket: TLSSocket, kind: EntityKind): string | null {
  if (!socket.authorized) return null;
  let id = cache.get(socket);
  if (id === undefined) {
    id = entityFromAltNames(socket.getPeerCertificate().subjectaltname, kind);
    cache.set(socket, id);
  }
  return id;
}

/** What a refused caller presented, for the log: a certificate's names, verified or not. */
export function presentedCertificate(
  socket: TLSSocket,
): { readonly san: string; readonly subject: string; readonly verified: boolean; readonly error?: string } | undefined {
  const cert = socket.getPeerCertificate();
  if (!cert || Object.keys(cert).length === 0) return undefined;
  const error = socket.authorizationError;
  return {
    san: cert.subjectaltname ?? '',
    subject: [cert.subject?.CN ?? ''].flat().join(','),
    verified: socket.authorized,
    ...(error ? { error: String(error) } : {}),
  };
}
