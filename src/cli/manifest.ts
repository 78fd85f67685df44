import { readFileSync } from 'node:fs';
import { fileProblem, writeFileAtomic } from '../config/files.js';
import type { Deployment } from './init.js';
import { UserError } from './usage-error.js';

/** What `qks demo` and `qks init` write for scripts, `qks sae`, `qks status` and `qks dashboard`. */
export interface Manifest {
  ca: string;
  /** `log`: where the demo's KMEs log (`qks kme` logs to its standard output). */
  kmes: Array<{ id: string; url: string; config: string; log?: string; node_address?: string }>;
  /** The QKD links between the KMEs (KME IDs at each end). */
  links?: Array<{ id: string; a: string; b: string }>;
  saes: Array<{ id: string; kme: string; cert: string; key: string }>;
  /** An administrator's certificate: the dashboard, `qks status`, /metrics. */
  operator?: { id: string; cert: string; key: string };
  /** The demo dashboard's URL, with its access token. */
  dashboard?: string;
  /** The SDN controller a demo with a topology runs: its API, and its PCE as HOST:PORT. */
  controller?: { url: string; pcep: string };
}

/** The manifest of a deployment `initDeployment` made. */
export const manifestOf = (d: Deployment, logs?: ReadonlyMap<string, string>): Manifest => ({
  ca: d.ca,
  kmes: d.configs.map(({ kme, file, config }) => ({
    id: kme,
    url: `https://${config.sae_api.host}:${config.sae_api.port}`,
    config: file,
    ...(logs?.has(kme) ? { log: logs.get(kme)! } : {}),
    ...(config.node_address ? { node_address: config.node_address } : {}),
  })),
  links: d.topology.links.map((l) => ({ id: l.id, a: l.a, b: l.b })),
  saes: d.saes.map((s) => ({ ...s })),
  ...(d.operator ? { operator: { ...d.operator } } : {}),
});

/** Written whole or not at all: whoever waits for the file finds it complete. */
export function writeManifest(file: string, manifest: Manifest): void {
  writeFileAtomic(file, JSON.stringify(manifest, null, 2) + '\n');
}

export function readManifest(file: string): Manifest {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    const why = fileProblem(err);
    throw new UserError(`--manifest ${file}: ${why}; qks demo writes it when ready, qks init as DIR/manifest.json`);
  }
  let m: Partial<Manifest>;
  try {
    m = JSON.parse(text) as Partial<Manifest>;
  } catch {
    throw new UserError(`--manifest ${file}: not JSON`);
  }
  if (typeof m.ca !== 'string' || !Array.isArray(m.kmes) || !Array.isArray(m.saes)) {
    throw new UserError(`--manifest ${file}: not a QKS manifest (it needs "ca", "kmes" and "saes")`);
  }
  return m as Manifest;
}
