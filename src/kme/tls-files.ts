import { readFileSync } from 'node:fs';
import type { Server, TLSSocket } from 'node:tls';
import type { Logger } from 'pino';
import { closeRevoked, peerRevoked, readCrl, watchCrl, type CrlState } from '../pki/crl.js';

export interface TlsFiles {
  readonly cert: string;
  readonly key: string;
  readonly ca: string;
  /** Certificates the CA revoked (`qks pki revoke`); refused at the handshake's verification. */
  readonly crl?: string | undefined;
}

export interface TlsMaterial {
  key: Buffer;
  cert: Buffer;
  ca: Buffer;
  crl?: Buffer;
}

export function readTls(files: TlsFiles): TlsMaterial {
  return {
    key: readFileSync(files.key),
    cert: readFileSync(files.cert),
    ca: readFileSync(files.ca),
    ...(files.crl ? { crl: readFileSync(files.crl) } : {}),
  };
}

/**
 * Reloads a server's TLS context when its revocation list changes, so a revocation takes effect
 * without a restart: new connections are verified against the new list, and open (kept-alive)
 * connections of a certificate it now names are closed, since they were verified before. `then`
 * hears of each new list too (the KME's own outgoing connections). Returns a function that stops it.
 */
export function reloadOnCrlChange(
  server: Server,
  files: TlsFiles,
  options: object,
  log: Logger,
  then?: (crl: CrlState) => void,
): () => void {
  const file = files.crl;
  if (!file) return () => undefined;
  const open = new Set<TLSSocket>();
  let revoked: ReadonlySet<string> = readCrl(file).revoked;
  const track = (socket: TLSSocket) => {
    // A handshake that began before the reload was verified against the list before it.
    if (peerRevoked(socket, revoked)) return socket.destroy();
    open.add(socket);
    socket.once('close', () => open.delete(socket));
  };
  server.on('secureConnection', track);
  const stop = watchCrl(
    file,
    (crl) => {
      try {
        server.setSecureContext({ ...options, ...readTls(files), crl: crl.pem });
      } catch (err) {
        log.error({ crl: file, err: (err as Error).message }, 'revocation list not reloaded; the previous one stays');
        return;
      }
      revoked = crl.revoked;
      const closed = closeRevoked(open, revoked);
      log.info(
        { crl: file, closed_connections: closed, next_update: crl.nextUpdate?.toISOString() },
        'revocation list reloaded',
      );
      then?.(crl);
    },
    (err) => log.error({ crl: file, err: err.message }, 'revocation list not reloaded; the previous one stays'),
  );
  return () => {
    stop();
    server.off('secureConnection', track);
  };
}
