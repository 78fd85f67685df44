import { join } from 'node:path';
import { pino } from 'pino';
import { writeControllerConfig } from '../../src/cli/controller-config.js';
import { manifestOf, writeManifest } from '../../src/cli/manifest.js';
import { freePorts } from '../../src/cli/ports.js';
import type { Topology } from '../../src/domain/topology.js';
import { loadControllerConfig } from '../../src/sdn/controller/config.js';
import { startController, type RunningController } from '../../src/sdn/controller/run.js';
import { startSites, type TwoSites } from './two-kmes.js';

export interface ControlledNetwork {
  readonly sites: TwoSites;
  readonly controller: RunningController;
  /** A demo-style manifest naming the controller, for `qks service --manifest`. */
  readonly manifest: string;
  stop(): Promise<void>;
}

/** KMEs of a topology in this process, the SDN controller over them (as qks demo runs it), and a manifest. */
export async function startControlledNetwork(topology: Topology, rateBps = 200_000): Promise<ControlledNetwork> {
  const sites = await startSites({ topology, operator: 'operator', rateBps });
  const [pcep] = await freePorts(1);
  const controller = await startController(
    loadControllerConfig(writeControllerConfig(sites.deployment, { host: '127.0.0.1', port: pcep! })),
    pino({ level: 'silent' }),
  );
  const manifest = join(sites.deployment.dir, 'manifest.json');
  writeManifest(manifest, {
    ...manifestOf(sites.deployment),
    controller: { url: controller.url, pcep: `127.0.0.1:${pcep}` },
  });
  return {
    sites,
    controller,
    manifest,
    stop: async () => {
      await controller.stop();
      await sites.stop();
    },
  };
}
