import { join, resolve } from 'node:path';
import type { DEMO, INIT } from './commands.js';
import { initDeployment, type InitOptions } from './init.js';
import { manifestOf, writeManifest } from './manifest.js';
import { writeControllerConfig } from './controller-config.js';
import { PCEP_PORT } from '../sdn/pcep/pce-server.js';
import type { CommandLine } from './parse.js';
import { freePorts, portTaken } from './ports.js';
import type { ValuesOf } from './spec.js';
import { UsageError, UserError } from './usage-error.js';
import { makeDirs } from '../config/files.js';
import { topologyOption } from './topology-option.js';
import { lineOf } from '../domain/topology.js';
import { initReplicas, replicaRequest } from './init-replicas.js';

export const DEFAULT_BASE_PORT = 8443;
/** The KME channel's ports are the SAE API's plus this, so that `--base-port` sets both. */
const CHANNEL_OFFSET = 1000;

/** The link options of `init` and `demo`: `--rate` is the shared-seed simulator's, and implies it. */
export function linkOptions(values: ValuesOf<typeof DEMO.options>) {
  const source = values.source ?? (values.rate ? 'simulated' : 'qkd');
  if (source !== 'qkd' && source !== 'simulated') throw new UsageError('--source must be qkd or simulated');
  if (values.rate && source !== 'simulated') throw new UsageError('--rate applies to --source simulated only');
  if (values['distance-km'] && source !== 'qkd') throw new UsageError('--distance-km applies to --source qkd only');
  return {
    source,
    ...(values.rate ? { rateBps: positiveNumber(values.rate, '--rate') } : {}),
    ...(values['distance-km'] ? { qkd: { distance_km: positiveNumber(values['distance-km'], '--distance-km') } } : {}),
  } as const;
}

export function positiveNumber(text: string, flag: string): number {
  const n = Number(text);
  if (!Number.isFinite(n) || n <= 0) throw new UsageError(`${flag} must be a positive number, not "${text}"`);
  return n;
}

type Ports = NonNullable<InitOptions['ports']>;

/** The ports `--base-port` or `--ports` ask for, checked free now where they can be. */
export async function choosePorts(values: ValuesOf<typeof INIT.options>, kmes: string[], host: string): Promise<Ports> {
  if (values.ports !== undefined && values['base-port'] !== undefined) {
    throw new UsageError('give --base-port or --ports, not both');
  }
  if (values.ports === 'auto') {
    const free = await freePorts(2 * kmes.length, host);
    return kmes.map((_, i) => ({ sae: free[2 * i]!, kme: free[2 * i + 1]! }));
  }
  let ports: Ports;
  if (values.ports !== undefined) {
    const pairs = values.ports.split(',').map((pair) => {
      const m = /^(\d+):(\d+)$/.exec(pair.trim());
      if (!m) throw new UsageError(`--ports: "${pair}" is not SAE:KME (two port numbers)`);
      return { sae: portNumber(m[1]!, '--ports'), kme: portNumber(m[2]!, '--ports') };
    });
    if (pairs.length !== kmes.length) {
      throw new UsageError(`--ports gives ${pairs.length} pairs for ${kmes.length} KMEs (${kmes.join(', ')})`);
    }
    ports = pairs;
  } else {
    const base = values['base-port'] === undefined ? DEFAULT_BASE_PORT : portNumber(values['base-port'], '--base-port');
    ports = kmes.map((_, i) => ({ sae: base + i, kme: base + CHANNEL_OFFSET + i }));
    if (ports.some((p) => p.kme > 65535)) throw new UsageError(`--base-port ${base} leaves no room: at most 64535`);
  }
  const all = ports.flatMap((p) => [p.sae, p.kme]);
  if (new Set(all).size !== all.length) throw new UsageError('--ports: a port appears twice');
  for (const [i, p] of ports.entries()) {
    for (const [port, what] of [
      [p.sae, 'SAE API'],
      [p.kme, 'KME channel'],
    ] as const) {
      if (await portTaken(port, host)) {
        throw new UsageError(
          `port ${port} on ${host} (${kmes[i]}'s ${what}) is in use; choose free ones with --base-port N or --ports auto`,
        );
      }
    }
  }
  return ports;
}

function portNumber(text: string, flag: string): number {
  const n = Number(text);
  if (!Number.isSafeInteger(n) || n < 1 || n > 65535) throw new UsageError(`${flag}: ${text} is not a port number`);
  return n;
}

export async function initCommand({ values }: CommandLine<typeof INIT.options>): Promise<number> {
  if (!values.dir) throw new UsageError('--dir DIR is required');
  if (values.kmes && values.topology) throw new UsageError('give --kmes or --topology, not both');
  const saesPerKme = values['saes-per-kme'] ? positiveNumber(values['saes-per-kme'], '--saes-per-kme') : 2;
  const topology = values.topology
    ? topologyOption(values.topology, saesPerKme)
    : lineOf(values.kmes?.split(',').map((k) => k.trim()) ?? ['kme-a', 'kme-b'], saesPerKme);
  const kmes = topology.sites.map((s) => s.kme);
  const host = values.host ?? '127.0.0.1';
  if (!values['hsm-module'] !== !values['hsm-token'])
    throw new UsageError('give --hsm-module and --hsm-token together');
  if (values['hsm-pin-file'] && !values['hsm-module']) throw new UsageError('--hsm-pin-file needs --hsm-module');
  const replicas = replicaRequest(values);
  const hsm = values['hsm-module'] &&
    values['hsm-token'] && {
      module: values['hsm-module'],
      tokenLabel: values['hsm-token'],
      ...(values['hsm-pin-file'] ? { pinFile: values['hsm-pin-file'] } : {}),
    };
  try {
    makeDirs(values.dir);
  } catch (err) {
    throw new UserError(`--dir: ${(err as Error).message}`);
  }
  const deployment = await initDeployment({
    dir: values.dir,
    topology,
    host,
    ports: await choosePorts(values, kmes, host),
    ...linkOptions(values),
    operator: 'operator',
    ...(hsm ? { hsm } : {}),
  });
  const manifest = join(resolve(values.dir), 'manifest.json');
  writeManifest(manifest, manifestOf(deployment));
  const out = (line: string) => process.stdout.write(line + '\n');
  // With replicas, HAProxy takes each KME's ports: the replicas' lines follow instead.
  for (const c of replicas ? [] : deployment.configs) {
    out(
      `${c.kme}: qks kme --config ${c.file}   (SAEs on port ${c.config.sae_api.port}, peers on ${c.config.kme_api.port})`,
    );
  }
  if (deployment.operator) out(`operator certificate (dashboard, qks status, /metrics): ${deployment.operator.cert}`);
  const controller = writeControllerConfig(deployment, { host: host, port: PCEP_PORT });
  out(`SDN controller (ETSI 015, PCEP on ${host}:${PCEP_PORT}): qks controller --config ${controller}`);
  out(`manifest (qks sae, qks status, qks dashboard: --manifest): ${manifest}`);
  if (replicas) await initReplicas(replicas, deployment, values, host, out);
  return 0;
}
