import { readFileSync } from 'node:fs';
import type { Logger } from 'pino';
import type { AccessPolicy } from '../domain/access-policy.js';
import type { KeyLimits } from '../domain/limits.js';
import type { KmeConfig } from './config.js';
import { buildSkipApi, SKIP_DRAFT } from './http/skip-api.js';
import type { KeyService } from './key-service.js';
import { PortUnavailable } from './listen.js';

export interface SkipDeps {
  readonly keys: KeyService;
  readonly access: AccessPolicy;
  readonly limits: KeyLimits;
  readonly saes: () => readonly string[];
  readonly log: Logger;
}

/** A PSK file holds the key in hexadecimal (as `openssl s_client -psk` takes it), at least 128 bits. */
export function readPskFile(file: string): Buffer {
  const text = readFileSync(file, 'utf8').trim();
  if (!/^([0-9a-fA-F]{2}){16,}$/.test(text)) {
    throw new Error(`skip.clients: ${file} must hold a PSK of at least 16 bytes in hexadecimal`);
  }
  return Buffer.from(text, 'hex');
}

/** Starts the SKIP listener when the configuration has one; returns how to close it and its port. */
export async function startSkip(
  cfg: KmeConfig,
  deps: SkipDeps,
): Promise<{ port: number; close: () => Promise<void> } | null> {
  if (!cfg.skip) return null;
  const { host, port } = cfg.skip;
  const clients = cfg.skip.clients.map((c) => ({ identity: c.identity, sae: c.sae, psk: readPskFile(c.psk_file) }));
  const server = buildSkipApi({ ...deps, clients });
  await new Promise<void>((resolve, reject) => {
    server.once('error', (err: NodeJS.ErrnoException) =>
      reject(err.code === 'EADDRINUSE' ? new PortUnavailable(`skip.port ${port} on ${host} is already in use`) : err),
    );
    server.listen(port, host, () => resolve());
  });
  const bound = (server.address() as { port: number }).port;
  deps.log.info({ host, port: bound, draft: SKIP_DRAFT, clients: clients.length }, 'SKIP key provider listening');
  return {
    port: bound,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}
