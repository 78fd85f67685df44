import { join } from 'node:path';
import { writeFileAtomic } from '../config/files.js';
import type { ControllerConfig } from '../sdn/controller/config.js';
import type { Deployment } from './init.js';

/**
 * The SDN controller's configuration for a deployment `qks init` or `qks demo` made: every KME's
 * node interface and node address, the trust the topology gives each site, the operator's
 * credentials; written as DIR/controller.json.
 */
export function writeControllerConfig(d: Deployment, pcep: { host: string; port: number }): string {
  const trusted = new Map(d.topology.sites.map((s) => [s.kme, s.trusted]));
  const config: ControllerConfig = {
    kmes: d.configs.map(({ kme, config }) => ({
      id: kme,
      url: `https://${config.sae_api.host}:${config.sae_api.port}`,
      node_address: config.node_address!,
      ...(trusted.get(kme) === false ? { trusted: false } : {}),
    })),
    ca: d.ca,
    cert: d.operator!.cert,
    key: d.operator!.key,
    pcep,
    poll_interval_ms: 2000,
    saes: d.saes.map((s) => ({ id: s.id, kme: s.kme })),
  };
  const file = join(d.dir, 'controller.json');
  writeFileAtomic(file, JSON.stringify(config, null, 2) + '\n');
  return file;
}
