import { readFileSync, unwatchFile, watchFile } from 'node:fs';
import type { Server } from 'node:tls';
import type { Logger } from 'pino';

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
 * without a restart (new connections; open ones are not cut). Returns a function that stops it.
 */
export function reloadOnCrlChange(server: Server, files: TlsFiles, options: object, log: Logger): () => void {
  const crl = files.crl;
  if (!crl) return () => undefined;
  watchFile(crl, { interval: 500 }, () => {
    try {
      server.setSecureContext({ ...options, ...readTls(files) });
      log.info({ crl }, 'revocation list reloaded');
    } catch (err) {
      log.error({ crl, err: (err as Error).message }, 'revocation list not reloaded; the previous one stays');
    }
  });
  return () => unwatchFile(crl);
}
