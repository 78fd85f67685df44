import { randomBytes } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { freePorts } from '../../src/cli/ports.js';
import type { KmeConfig } from '../../src/kme/config.js';
import { startSites } from './two-kmes.js';

/** A SKIP client (a router): its PSK identity and key, and its KME's SKIP port. */
export interface Router {
  readonly identity: string;
  readonly psk: Buffer;
  readonly port: number;
}

/** Starts a deployment whose KMEs serve SKIP, one router (SKIP client) per named SAE. */
export async function skipSites(
  topology: Parameters<typeof startSites>[0],
  routerSaes: Record<string, string>,
  configure?: (config: KmeConfig) => void,
) {
  const routers = new Map<string, Router>();
  const ports = await freePorts(Object.keys(routerSaes).length);
  let i = 0;
  const portOf = new Map<string, number>();
  const sites = await startSites({
    ...topology,
    configure: (config) => {
      configure?.(config);
      const clients = Object.entries(routerSaes)
        .filter(([, sae]) => config.saes.find((s) => s.id === sae)?.kme === config.kme_id)
        .map(([identity, sae]) => {
          const psk = randomBytes(32);
          const file = join(config.data_dir, `${identity}.psk`);
          writeFileSync(file, psk.toString('hex'));
          const port = portOf.get(config.kme_id) ?? ports[i++]!;
          portOf.set(config.kme_id, port);
          routers.set(identity, { identity, psk, port });
          return { identity, sae, psk_file: file };
        });
      if (clients.length > 0) config.skip = { host: '127.0.0.1', port: portOf.get(config.kme_id)!, clients };
    },
  });
  return { sites, router: (identity: string) => routers.get(identity)! };
}
