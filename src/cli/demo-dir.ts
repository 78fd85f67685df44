import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { writeFileAtomic } from '../config/files.js';
import { lockHolder } from '../kme/data-dir-lock.js';
import { join } from 'node:path';
import { loadConfig, type KmeConfig } from '../kme/config.js';
import { topologyFromObject, topologyToObject } from '../config/topology-file.js';
import { lineOf, type Topology } from '../domain/topology.js';
import { initDeployment, SAE_CA, TOPOLOGY_FILE, type Deployment, type InitOptions } from './init.js';
import { UserError } from './usage-error.js';

export const DEMO_KMES = ['kme-a', 'kme-b'] as const;
export const OPERATOR_ID = 'operator';

type LinkChoice = Pick<InitOptions, 'source' | 'qkd' | 'rateBps'>;
type Ports = NonNullable<InitOptions['ports']>;

/**
 * The demo's deployment in `dir`: made there (of `topology`, by default two sites) when the
 * directory is new or empty, or the one an earlier demo left there, on new ports (the old ones may
 * be taken by now). `ports(n)` gives a pair of free ports for each of n KMEs.
 */
export async function demoDeployment(
  dir: string,
  link: LinkChoice,
  ports: (count: number) => Promise<Ports>,
  topology?: Topology,
): Promise<Deployment> {
  if (!existsSync(dir) || readdirSync(dir).length === 0) {
    const shape = topology ?? lineOf(DEMO_KMES);
    return initDeployment({
      dir,
      topology: shape,
      ports: await ports(shape.sites.length),
      ...link,
      operator: OPERATOR_ID,
    });
  }
  const kept = keptTopology(dir);
  if (topology && JSON.stringify(topologyToObject(topology)) !== JSON.stringify(topologyToObject(kept))) {
    throw new UserError(`--dir ${dir} holds a demo of another topology; run it without --topology, or use a new --dir`);
  }
  const kmes = kept.sites.map((s) => s.kme);
  const files = kmes.map((k) => join(dir, `${k}.json`));
  // A demo already running on this directory keeps its ports: refuse before changing anything.
  for (const file of files) {
    const holder = lockHolder(loadConfig(file).data_dir);
    if (holder)
      throw new UserError(`--dir ${dir} is in use by a running demo or KME (pid ${holder.pid}); stop it first`);
  }
  const fresh = await ports(kmes.length);
  const configs = files.map((file, i) => {
    const config = loadConfig(file);
    checkSameLink(config, link, file);
    const edited = JSON.parse(readFileSync(file, 'utf8')) as KmeConfig;
    edited.sae_api.port = fresh[i]!.sae;
    edited.kme_api.port = fresh[i]!.kme;
    edited.peers = edited.peers.map((p) => ({
      ...p,
      url: `https://${edited.kme_api.host}:${fresh[kmes.indexOf(p.kme_id)]!.kme}`,
    }));
    writeFileAtomic(file, JSON.stringify(edited, null, 2) + '\n');
    // Read back through the checks every KME configuration passes.
    return { kme: kmes[i]!, file, config: loadConfig(file) };
  });
  const pki = join(dir, 'pki');
  const pair = (sub: string, id: string) => ({ cert: join(pki, sub, `${id}.pem`), key: join(pki, sub, `${id}.key`) });
  return {
    dir,
    ca: join(pki, `${SAE_CA}.pem`),
    configs,
    saes: configs[0]!.config.saes.map((s) => ({ ...s, ...pair('saes', s.id) })),
    ...(existsSync(pair('operators', OPERATOR_ID).cert)
      ? { operator: { id: OPERATOR_ID, ...pair('operators', OPERATOR_ID) } }
      : {}),
    topology: kept,
  };
}

/** The topology a kept demo was made of (demos made before topologies were two sites). */
function keptTopology(dir: string): Topology {
  const file = join(dir, TOPOLOGY_FILE);
  if (existsSync(file)) return topologyFromObject(JSON.parse(readFileSync(file, 'utf8')), 2, file);
  if (!DEMO_KMES.every((k) => existsSync(join(dir, `${k}.json`)))) {
    throw new UserError(
      `--dir ${dir} is not empty and holds no QKS demo (kme-a.json, kme-b.json); choose a new or empty directory`,
    );
  }
  return lineOf(DEMO_KMES);
}

/** A kept demo runs with the link it was made with: flags that ask for another are refused, not ignored. */
function checkSameLink(config: KmeConfig, link: LinkChoice, file: string): void {
  const source = config.links[0]?.source;
  if (!source) throw new UserError(`${file} has no link; it was not made by qks demo`);
  const differs =
    (link.source !== undefined && source.type !== link.source) ||
    (link.rateBps !== undefined && source.type === 'simulated' && source.rate_bps !== link.rateBps) ||
    (link.qkd?.distance_km !== undefined &&
      source.type === 'qkd' &&
      (source.distance_km ?? 25) !== link.qkd.distance_km);
  if (differs) {
    throw new UserError(
      `the demo kept in ${config.data_dir.replace(/\/[^/]+$/, '')} has a ${source.type} link with other settings; ` +
        'run it without link options, or use a new --dir',
    );
  }
}
