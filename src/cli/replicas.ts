import { copyFileSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { KmeConfig } from '../kme/config.js';
import { MASTER_KEY_FILE } from '../kme/kme.js';
import { haproxyConfig } from './haproxy-config.js';
import type { Deployment } from './init.js';

export interface ReplicaOptions {
  /** Replicas per KME (2 or more). */
  readonly count: number;
  /** The PostgreSQL database of each KME: every replica of a KME shares it; KMEs never share one. */
  readonly postgresUrl: (kme: string) => string;
  /** Two free ports per replica (its SAE API, its KME channel), KME after KME. */
  readonly ports: readonly number[];
  readonly leaseMs?: number;
}

export interface ReplicatedSite {
  readonly kme: string;
  /** HAProxy's configuration: the site's SAE API and KME channel addresses, in front of the replicas. */
  readonly haproxyFile: string;
  readonly replicas: ReadonlyArray<{ readonly name: string; readonly file: string; readonly config: KmeConfig }>;
}

/** The database name of a KME: letters, digits and underscores, so that it needs no quoting. */
export const databaseOf = (kme: string) => `qks_${kme.replace(/[^A-Za-z0-9]/g, '_').toLowerCase()}`;

/**
 * Turns each KME of a deployment into `count` replicas sharing one PostgreSQL database behind an
 * HAProxy (docs/operations.md). The site keeps its addresses: HAProxy listens where the KME did,
 * so peers, SAEs and the manifest need no change, and each replica gets ports of its own. Every
 * replica has a data folder of its own (its lock, routes) holding a copy of the KME's master key:
 * they all open the same sealed material.
 */
export function writeReplicas(deployment: Deployment, opts: ReplicaOptions): ReplicatedSite[] {
  if (!Number.isInteger(opts.count) || opts.count < 2) throw new TypeError('replicas: at least 2');
  if (opts.ports.length < 2 * opts.count * deployment.configs.length) throw new TypeError('replicas: too few ports');
  if (deployment.configs.some((c) => c.config.master_key)) {
    throw new TypeError('replicas: not with a master key in a PKCS#11 token yet (docs/operations.md)');
  }
  let nextPort = 0;
  return deployment.configs.map(({ kme, config }) => {
    const replicas = Array.from({ length: opts.count }, (_, i) => {
      const name = `r${i + 1}`;
      const dataDir = `${config.data_dir}-${name}`;
      mkdirSync(dataDir, { recursive: true, mode: 0o700 });
      copyFileSync(join(config.data_dir, MASTER_KEY_FILE), join(dataDir, MASTER_KEY_FILE));
      const replica: KmeConfig = {
        ...structuredClone(config),
        data_dir: dataDir,
        store: 'postgres',
        postgres: { url: opts.postgresUrl(kme) },
        replica: { name, lease_ms: opts.leaseMs ?? 3000 },
        sae_api: { ...structuredClone(config.sae_api), port: opts.ports[nextPort++]! },
        kme_api: { ...structuredClone(config.kme_api), port: opts.ports[nextPort++]! },
      };
      delete replica.source_file;
      const file = join(deployment.dir, `${kme}-${name}.json`);
      writeFileSync(file, JSON.stringify(replica, null, 2) + '\n', { mode: 0o600 });
      return { name, file, config: replica };
    });
    const haproxyFile = join(deployment.dir, `haproxy-${kme}.cfg`);
    writeFileSync(
      haproxyFile,
      haproxyConfig({
        kme,
        sae: { host: config.sae_api.host, port: config.sae_api.port },
        kmeChannel: { host: config.kme_api.host, port: config.kme_api.port },
        replicas: replicas.map((r) => ({
          name: r.name,
          host: r.config.sae_api.host,
          saePort: r.config.sae_api.port,
          kmePort: r.config.kme_api.port,
        })),
      }),
    );
    return { kme, haproxyFile, replicas };
  });
}
