import { loadTopology } from '../config/topology-file.js';
import { TopologyError, type Topology } from '../domain/topology.js';
import { UserError } from './usage-error.js';

/** `--topology SHAPE|FILE` of `qks init` and `qks demo`; its errors are the user's to fix. */
export function topologyOption(spec: string, saesPerSite?: number): Topology {
  try {
    return loadTopology(spec, saesPerSite);
  } catch (err) {
    if (err instanceof TopologyError) throw new UserError(err.message);
    throw err;
  }
}
