import type { INIT } from './commands.js';
import type { Deployment } from './init.js';
import { DEFAULT_BASE_PORT, positiveNumber } from './init-command.js';
import { freePorts } from './ports.js';
import { databaseOf, writeReplicas } from './replicas.js';
import type { ValuesOf } from './spec.js';
import { UsageError } from './usage-error.js';

/** Replicas' ports sit above the KMEs' own: SAE APIs from BASE+2000, KME channels from BASE+3000. */
const REPLICA_OFFSETS = { sae: 2000, kme: 3000 } as const;

export interface ReplicaRequest {
  readonly count: number;
  readonly postgres: URL;
}

/** `--replicas N --postgres URL`, checked before anything is written. */
export function replicaRequest(values: ValuesOf<typeof INIT.options>): ReplicaRequest | undefined {
  if (values.replicas === undefined) {
    if (values.postgres !== undefined) throw new UsageError('--postgres applies to --replicas only');
    return undefined;
  }
  const count = positiveNumber(values.replicas, '--replicas');
  if (!Number.isInteger(count) || count < 2) throw new UsageError('--replicas must be a whole number, 2 or more');
  if (values['hsm-module']) throw new UsageError('--replicas: not with --hsm-module yet (docs/operations.md)');
  if (!values.postgres)
    throw new UsageError('--replicas needs --postgres URL: the replicas of a KME share its database');
  let postgres: URL;
  try {
    postgres = new URL(values.postgres);
  } catch {
    throw new UsageError(`--postgres: "${values.postgres}" is not a URL like postgres://user@host:5432`);
  }
  if (!/^postgres(ql)?:$/.test(postgres.protocol)) throw new UsageError('--postgres: the URL must begin postgres://');
  if (postgres.password) throw new UsageError('--postgres: no password in the URL; use PGPASSWORD or ~/.pgpass');
  return { count, postgres };
}

/** Writes the replicas' configurations and HAProxy's, and says what to run. */
export async function initReplicas(
  request: ReplicaRequest,
  deployment: Deployment,
  values: ValuesOf<typeof INIT.options>,
  host: string,
  out: (line: string) => void,
): Promise<void> {
  const n = request.count * deployment.configs.length;
  let ports: number[];
  if (values.ports === 'auto') ports = await freePorts(2 * n, host);
  else {
    const base = values['base-port'] === undefined ? DEFAULT_BASE_PORT : Number(values['base-port']);
    if (base + REPLICA_OFFSETS.kme + n > 65535) throw new UsageError(`--base-port ${base} leaves no room for replicas`);
    ports = Array.from({ length: n }, (_, i) => [
      base + REPLICA_OFFSETS.sae + i,
      base + REPLICA_OFFSETS.kme + i,
    ]).flat();
  }
  const urlOf = (kme: string) => {
    const url = new URL(request.postgres);
    url.pathname = `/${databaseOf(kme)}`;
    return url.toString();
  };
  const sites = writeReplicas(deployment, { count: request.count, postgresUrl: urlOf, ports });
  out(`Each KME runs as ${request.count} replicas sharing its PostgreSQL database, behind HAProxy:`);
  for (const site of sites) {
    out(`${site.kme}: create database ${databaseOf(site.kme)} (the KMEs migrate it); haproxy -f ${site.haproxyFile}`);
    for (const r of site.replicas) out(`  ${site.kme} ${r.name}: qks kme --config ${r.file}`);
  }
}
