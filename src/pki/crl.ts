import { readFileSync, unwatchFile, watchFile } from 'node:fs';
import type { TLSSocket } from 'node:tls';
import { x509 } from './x509.js';

/** One reading of a revocation list file (PEM). */
export interface CrlState {
  readonly file: string;
  readonly pem: Buffer;
  /** Serial numbers it names, as `serialKey` spells them. */
  readonly revoked: ReadonlySet<string>;
  readonly thisUpdate: Date;
  /** After this, OpenSSL refuses every handshake verified against the list. */
  readonly nextUpdate: Date | null;
}

/** Serial numbers are compared as lower-case hex without leading zeros (OpenSSL drops them). */
const serialKey = (hex: string): string => hex.toLowerCase().replace(/^0+(?=.)/, '');

function parseCrl(file: string, pem: Buffer): CrlState {
  const crl = new x509.X509Crl(pem.toString());
  return {
    file,
    pem,
    revoked: new Set(crl.entries.map((e) => serialKey(e.serialNumber))),
    thisUpdate: crl.thisUpdate,
    nextUpdate: crl.nextUpdate ?? null,
  };
}

export const readCrl = (file: string): CrlState => parseCrl(file, readFileSync(file));

/**
 * Whether the verified certificate of a TLS socket's peer is one the list names. An unverified
 * one is left to whoever accepted it unverified (the SAE API answers it 401).
 */
export function peerRevoked(socket: TLSSocket, revoked: ReadonlySet<string>): boolean {
  if (socket.destroyed || !socket.authorized) return false;
  const serial = socket.getPeerCertificate()?.serialNumber;
  return typeof serial === 'string' && serial !== '' && revoked.has(serialKey(serial));
}

/** Destroys the sockets whose peer's certificate the list names; returns how many. */
export function closeRevoked(sockets: Iterable<TLSSocket>, revoked: ReadonlySet<string>): number {
  let closed = 0;
  for (const socket of sockets) {
    if (!peerRevoked(socket, revoked)) continue;
    socket.destroy();
    closed += 1;
  }
  return closed;
}

/**
 * Calls `onChange` with the new list each time the file changes (polled: it is usually replaced
 * by a rename, which file system events report unreliably), `onError` when it cannot be read, in
 * which case the caller keeps the list it had. Returns a function that stops watching; other
 * watchers of the same file in this process are left alone.
 */
export function watchCrl(
  file: string,
  onChange: (crl: CrlState) => void,
  onError: (err: Error) => void,
  intervalMs = 500,
): () => void {
  const listener = () => {
    let crl: CrlState;
    try {
      crl = readCrl(file);
    } catch (err) {
      onError(err as Error);
      return;
    }
    onChange(crl);
  };
  // Not persistent: a watcher alone does not keep a process running.
  watchFile(file, { interval: intervalMs, persistent: false }, listener);
  return () => unwatchFile(file, listener);
}
