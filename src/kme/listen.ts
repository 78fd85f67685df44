import type { FastifyInstance } from 'fastify';
import { ConfigError, type KmeConfig } from './config.js';
import { inConfig } from './config-files.js';

/** A listener the configuration asks for cannot be opened: the port is taken, or not this user's to take. */
export class PortUnavailable extends ConfigError {
  override name = 'PortUnavailable';
}

/**
 * Opens one of the KME's listeners (`sae_api` or `kme_api`); when the system refuses, says which
 * key of which file to change: `kme-a.json: sae_api.port 8443 on 127.0.0.1 is already in use by
 * another process; choose another port`.
 */
export async function listenAs(app: FastifyInstance, api: 'sae_api' | 'kme_api', cfg: KmeConfig): Promise<void> {
  const { host, port } = cfg[api];
  try {
    await app.listen({ host, port });
  } catch (err) {
    const why = refusal((err as NodeJS.ErrnoException).code, api, host, port);
    if (!why) throw err;
    throw new PortUnavailable(`${inConfig(cfg)}${why}`);
  }
}

function refusal(code: string | undefined, api: string, host: string, port: number): string | undefined {
  switch (code) {
    case 'EADDRINUSE':
      return `${api}.port ${port} on ${host} is already in use by another process; choose another port`;
    case 'EACCES':
      return (
        `${api}.port ${port} on ${host} is not permitted for this user; choose another port` +
        (port < 1024 ? ' (ports below 1024 need privileges)' : '')
      );
    case 'EADDRNOTAVAIL':
      return `${api}.host ${host} is not an address of this machine; choose one of its addresses (or 127.0.0.1)`;
    case 'ENOTFOUND':
    case 'EAI_AGAIN':
      return `${api}.host ${host} does not resolve to an address of this machine`;
    default:
      return undefined;
  }
}
