import { randomBytes } from 'node:crypto';
import { chmodSync, existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { CertificateAuthority } from '../pki/authority.js';
import type { KmeConfig, QkdSourceConfig } from '../kme/config.js';
import { MASTER_KEY_FILE } from '../kme/kme.js';
import { lineOf, topologyProblems, type Topology } from '../domain/topology.js';
import { topologyToObject } from '../config/topology-file.js';
import { makeDirs } from '../config/files.js';

export { saeIdsOf } from '../domain/topology.js';

export interface InitOptions {
  readonly dir: string;
  /** KME IDs; consecutive KMEs are joined by a simulated link (unless `topology` is given). */
  readonly kmes?: readonly string[];
  readonly saesPerKme?: number;
  /** Sites, their SAEs and the links between them; by default `kmes` in a line. */
  readonly topology?: Topology;
  readonly host?: string;
  /** Ports per KME: SAE API and KME-to-KME channel. */
  readonly ports?: ReadonlyArray<{ sae: number; kme: number }>;
  /** `qkd` (default): the physics-level simulator; `simulated`: the shared-seed stand-in. */
  readonly source?: 'qkd' | 'simulated';
  /** Settings of the `qkd` source beyond its defaults (docs/configuration.md). */
  readonly qkd?: Omit<QkdSourceConfig, 'type' | 'seed_file'>;
  /** Secret key rate of the `simulated` source. */
  readonly rateBps?: number;
  readonly blockBits?: number;
  readonly capacityBlocks?: number;
  /** When the simulated links started (ms); earlier than now gives pools full from the start. */
  readonly epochMs?: number;
  readonly store?: 'sqlite' | 'memory';
  readonly limits?: Partial<KmeConfig['limits']>;
  readonly logLevel?: string;
  readonly auth?: KmeConfig['sae_api']['auth'];
  readonly access?: Partial<KmeConfig['access']>;
  /** Issues an operator certificate with this ID (`pki/operators/`), an administrator at every KME. */
  readonly operator?: string;
  /** How long each revocation list is valid (default a year); short ones are for tests. */
  readonly crlLifetimeSeconds?: number;
  /**
   * Master keys as KEKs in this PKCS#11 token (labelled qks-<kme>.N, made by each KME at its first
   * start) instead of master.key files; the PIN from `pinFile`, or QKS_HSM_PIN when there is none.
   */
  readonly hsm?: { readonly module: string; readonly tokenLabel: string; readonly pinFile?: string };
  /** The KMEs' upkeep of the revocation lists; by default they renew them with the CA keys made here. */
  readonly crl?: Partial<KmeConfig['crl']>;
}

export interface SaeCredentials {
  readonly id: string;
  readonly kme: string;
  readonly cert: string;
  readonly key: string;
}

export interface Deployment {
  readonly dir: string;
  /** The CA that SAEs trust for the KMEs' API certificates and that issues SAE certificates. */
  readonly ca: string;
  readonly configs: ReadonlyArray<{ kme: string; file: string; config: KmeConfig }>;
  readonly saes: readonly SaeCredentials[];
  /** The operator's certificate, for the dashboard, `qks status` and /metrics. */
  readonly operator?: { readonly id: string; readonly cert: string; readonly key: string };
  readonly topology: Topology;
}

const SECRET = { mode: 0o600 } as const;
/** File names of the two CAs in `<dir>/pki` (`qks pki` works on them). */
export const SAE_CA = 'sae-ca';
export const KME_CA = 'kme-ca';
export const TOPOLOGY_FILE = 'topology.json';

/**
 * Creates everything a set of KMEs needs: two CAs (SAE trust and KME-to-KME trust), certificates,
 * a master key per KME (mode 0600), link seeds, and one configuration file per KME.
 */
export async function initDeployment(opts: InitOptions): Promise<Deployment> {
  const dir = resolve(opts.dir);
  const topology = opts.topology ?? lineOf(opts.kmes ?? ['kme-a', 'kme-b'], opts.saesPerKme ?? 2);
  const problems = topologyProblems(topology);
  if (problems.length > 0) throw new Error(`invalid topology: ${problems.join('; ')}`);
  const kmes = topology.sites.map((s) => s.kme);
  const host = opts.host ?? '127.0.0.1';
  if (kmes.some((k) => existsSync(join(dir, `${k}.json`)))) {
    throw new Error(`${dir} already holds a QKS deployment; choose another directory`);
  }
  const ports = opts.ports ?? kmes.map((_, i) => ({ sae: 8443 + i, kme: 9443 + i }));
  if (ports.length !== kmes.length) throw new Error('one pair of ports per KME is needed');
  const server = { dns: ['localhost'], ips: [host === 'localhost' ? '127.0.0.1' : host] };

  makeDirs(dir);
  const pki = join(dir, 'pki');
  for (const sub of ['', 'saes', ...kmes]) mkdirSync(join(pki, sub), { recursive: true });
  const crlLifetimeMs = opts.crlLifetimeSeconds ? opts.crlLifetimeSeconds * 1000 : undefined;
  const saeCa = await CertificateAuthority.create(pki, SAE_CA, 'QKS SAE CA', crlLifetimeMs);
  const kmeCa = await CertificateAuthority.create(pki, KME_CA, 'QKS KME CA', crlLifetimeMs);

  const saes: SaeCredentials[] = [];
  for (const { kme, saes: ids } of topology.sites) {
    for (const id of ids) {
      // Server use too: an SAE answers its peer SAEs in the key agreement (docs/sae-agreement.md).
      const files = await saeCa.issue(
        { commonName: id, entity: { kind: 'sae', id }, client: true, server: { dns: [], ips: [] } },
        join(pki, 'saes'),
        id,
      );
      saes.push({ id, kme, cert: files.cert, key: files.key });
    }
  }

  let operator: Deployment['operator'];
  if (opts.operator) {
    const id = opts.operator;
    mkdirSync(join(pki, 'operators'), { recursive: true });
    const files = await saeCa.issue(
      { commonName: id, entity: { kind: 'sae', id }, client: true },
      join(pki, 'operators'),
      id,
    );
    operator = { id, cert: files.cert, key: files.key };
  }

  const epochMs = opts.epochMs ?? Date.now();
  const links = topology.links.map((l) => {
    const endpoints = [l.a, l.b] as [string, string];
    const type = l.source?.type ?? opts.source ?? 'qkd';
    mkdirSync(join(dir, 'links'), { recursive: true });
    // The shared-seed stand-in needs one seed for both ends; a QKD link's ends each have their own.
    const seedFiles = new Map(
      (type === 'simulated' ? [''] : endpoints).map((end) => {
        const file = join(dir, 'links', end ? `${l.id}.${end}.seed` : `${l.id}.seed`);
        writeFileSync(file, randomBytes(32).toString('hex') + '\n', SECRET);
        return [end, file];
      }),
    );
    const seedFile = (end: string) => seedFiles.get(end) ?? seedFiles.get('')!;
    const source = (end: string): KmeConfig['links'][number]['source'] =>
      l.source?.type === 'simulated' || (!l.source && type === 'simulated')
        ? {
            type: 'simulated',
            seed_file: seedFile(end),
            rate_bps: (l.source?.type === 'simulated' ? l.source.rate_bps : undefined) ?? opts.rateBps ?? 1_000_000,
            epoch_ms: epochMs,
          }
        : {
            type: 'qkd',
            seed_file: seedFile(end),
            ...opts.qkd,
            ...(l.source?.type === 'qkd' && l.source.distance_km ? { distance_km: l.source.distance_km } : {}),
          };
    return { id: l.id, endpoints, source };
  });
  const url = (port: number) => `https://${host}:${port}`;

  const configs = [];
  for (const [i, kme] of kmes.entries()) {
    const dataDir = join(dir, kme);
    mkdirSync(dataDir, { recursive: true, mode: 0o700 });
    if (!opts.hsm) {
      writeFileSync(join(dataDir, MASTER_KEY_FILE), randomBytes(32), SECRET);
      // The mode above applies only to a new file: one left from an earlier run is made private too.
      chmodSync(join(dataDir, MASTER_KEY_FILE), SECRET.mode);
    }
    const saeApi = await saeCa.issue({ commonName: kme, server }, join(pki, kme), 'sae-api');
    const kmeApi = await kmeCa.issue(
      { commonName: kme, entity: { kind: 'kme', id: kme }, server, client: true },
      join(pki, kme),
      'kme-api',
    );
    const mine = links.filter((l) => l.endpoints.includes(kme));
    const config: KmeConfig = {
      kme_id: kme,
      node_address: topology.sites[i]!.nodeAddress,
      data_dir: dataDir,
      store: opts.store ?? 'sqlite',
      store_synchronous: 'FULL',
      ...(opts.hsm ? { master_key: hsmMasterKey(opts.hsm, kme) } : {}),
      sae_api: {
        host,
        port: ports[i]!.sae,
        cert: saeApi.cert,
        key: saeApi.key,
        client_ca: saeCa.certFile,
        crl: saeCa.crlFile,
        auth: opts.auth ?? { mode: 'certificate' },
      },
      kme_api: {
        host,
        port: ports[i]!.kme,
        cert: kmeApi.cert,
        key: kmeApi.key,
        ca: kmeCa.certFile,
        crl: kmeCa.crlFile,
      },
      access: {
        admins: [],
        admin_scope: 'qks:admin',
        rules: [],
        ...opts.access,
        operators: [...(operator ? [operator.id] : []), ...(opts.access?.operators ?? [])],
      },
      peers: mine.map((l) => {
        const peer = l.endpoints.find((e) => e !== kme)!;
        return { kme_id: peer, url: url(ports[kmes.indexOf(peer)]!.kme) };
      }),
      saes: saes.map((s) => ({ id: s.id, kme: s.kme })),
      network: {
        links: topology.links.map((l) => ({ id: l.id, a: l.a, b: l.b })),
        untrusted: topology.sites.filter((s) => !s.trusted).map((s) => s.kme),
      },
      links: mine.map((l) => ({
        id: l.id,
        endpoints: l.endpoints,
        block_bits: opts.blockBits ?? 256,
        capacity_blocks: opts.capacityBlocks ?? 100_000,
        source: l.source(kme),
      })),
      limits: {
        key_size: 256,
        min_key_size: 64,
        max_key_size: 8192,
        max_key_per_request: 128,
        max_SAE_ID_count: 8,
        ...opts.limits,
      },
      log_level: opts.logLevel ?? 'info',
      key_ttl_seconds: 7 * 24 * 3600,
      // The CA keys are in this deployment's pki/: the KMEs renew the lists with them (docs/authentication.md).
      crl: { renew: true, warn_before_seconds: 30 * 24 * 3600, check_interval_seconds: 60, ...opts.crl },
    };
    const file = join(dir, `${kme}.json`);
    writeFileSync(file, JSON.stringify(config, null, 2) + '\n');
    configs.push({ kme, file, config });
  }
  // What was made, in the --topology file format: a kept demo is run again from it.
  writeFileSync(join(dir, TOPOLOGY_FILE), JSON.stringify(topologyToObject(topology), null, 2) + '\n');
  return { dir, ca: saeCa.certFile, configs, saes, ...(operator ? { operator } : {}), topology };
}

const hsmMasterKey = (hsm: NonNullable<InitOptions['hsm']>, kme: string): NonNullable<KmeConfig['master_key']> => ({
  kind: 'pkcs11',
  module: hsm.module,
  token_label: hsm.tokenLabel,
  key_label: `qks-${kme}`,
  ...(hsm.pinFile ? { pin_file: resolve(hsm.pinFile) } : {}),
  rewrap_interval_ms: 10_000,
});
