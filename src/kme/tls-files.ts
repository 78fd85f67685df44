import { readFileSync, unwatchFile, watchFile } from 'node:fs';
import type { Server, TLSSocket } from 'node:tls';
import type { Logger } from 'pino';
import { x509 } from '../pki/x509.js';

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

/** Serial numbers are compared as lower-case hex without leading zeros (OpenSSL drops them). */
const serialKey = (hex: string) => hex.toLowerCase().replace(/^0+(?=.)/, '');

/** The serial numbers a PEM revocation list names. */
export function revokedSerials(crlPem: string | Buffer): Set<string> {
  const crl = new x509.X509Crl(crlPem.toString());
  return new Set(crl.entries.map((e) => serialKey(e.serialNumber)));
}

/**
 * Reloads a server's TLS context when its revocation list changes, so a revocation takes effect
 * without a restart: new connections are verified against the new list, and open (kept-alive)
 * connections of a certificate it now names are closed, since they were verified before.
 * Returns a function that stops it.
 */
export function reloadOnCrlChange(server: Server, files: TlsFiles, options: object, log: Logger): () => void {
  const crl = files.crl;
  if (!crl) return () => undefined;
  const open = new Set<TLSSocket>();
  const track = (socket: TLSSocket) => {
    open.add(socket);
    socket.once('close', () => open.delete(socket));
  };
  server.on('secureConnection', track);
  watchFile(crl, { interval: 500 }, () => {
    try {
      const material = readTls(files);
      const revoked = revokedSerials(material.crl!);
      server.setSecureContext({ ...options, ...material });
      let closed = 0;
      for (const socket of open) {
        const serial = socket.authorized ? socket.getPeerCertificate().serialNumber : undefined;
        if (serial && revoked.has(serialKey(serial))) {
          socket.destroy();
          closed += 1;
        }
      }
      log.info({ crl, closed_connections: closed }, 'revocation list reloaded');
    } catch (err) {
      log.error({ crl, err: (err as Error).message }, 'revocation list not reloaded; the previous one stays');
    }
  });
  return () => {
    unwatchFile(crl);
    server.off('secureConnection', track);
  };
}
