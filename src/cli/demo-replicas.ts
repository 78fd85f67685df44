import { spawn, spawnSync } from 'node:child_process';
import { closeSync, openSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { pino } from 'pino';
import { loadConfig } from '../kme/config.js';
import { startKme } from '../kme/kme.js';
import type { Teardown } from '../kme/teardown.js';
import { startDemoPostgres } from './demo-postgres.js';
import type { Deployment } from './init.js';
import { freePorts, portAnswers } from './ports.js';
import { databaseOf, writeReplicas } from './replicas.js';
import { UserError } from './usage-error.js';

/** Starts HAProxy on a site's configuration; resolves once the site's two addresses accept. */
async function startHaproxy(file: string, log: string, ports: readonly number[], teardown: Teardown): Promise<void> {
  const out = openSync(log, 'a');
  const child = spawn('haproxy', ['-db', '-f', file], { stdio: ['ignore', out, out] });
  closeSync(out);
  teardown.add(async () => {
    if (child.exitCode !== null || child.signalCode !== null) return;
    const exited = new Promise((resolve) => child.once('exit', resolve));
    child.kill('SIGTERM');
    await exited;
  });
  for (let i = 0; i < 200; i++) {
    if (child.exitCode !== null) throw new UserError(`haproxy exited at start; see ${log}`);
    if ((await Promise.all(ports.map((p) => portAnswers(p)))).every(Boolean)) return;
    await sleep(50);
  }
  throw new UserError(`haproxy did not listen within 10 s; see ${log}`);
}

/**
 * The demo with each KME as `count` replicas (qks demo --replicas): a PostgreSQL server of its own
 * holding one database per KME, the replicas in this process, and a real HAProxy per site at the
 * KME's addresses, so that SAEs, peers and the manifest see one KME per site. Returns each KME's
 * first replica's log.
 */
export async function startReplicatedDemo(
  deployment: Deployment,
  count: number,
  dir: string,
  teardown: Teardown,
): Promise<Map<string, string>> {
  if (spawnSync('haproxy', ['-v']).error) {
    throw new UserError(
      '--replicas needs HAProxy in front of each site, and it is not installed: apt-get install haproxy',
    );
  }
  const postgres = await startDemoPostgres();
  teardown.add(() => postgres.stop());
  for (const { kme } of deployment.configs) await postgres.createDatabase(databaseOf(kme));
  const sites = writeReplicas(deployment, {
    count,
    postgresUrl: (kme) => postgres.url(databaseOf(kme)),
    ports: await freePorts(2 * count * deployment.configs.length),
  });
  const logs = new Map<string, string>();
  for (const site of sites) {
    for (const replica of site.replicas) {
      const log = join(dir, `${site.kme}-${replica.name}.log`);
      if (!logs.has(site.kme)) logs.set(site.kme, log);
      const config = loadConfig(replica.file);
      const logger = pino({ level: config.log_level }, pino.destination({ dest: log, sync: false }));
      const running = await startKme(config, logger);
      teardown.add(() => running.stop());
    }
  }
  // HAProxy last: its first health checks find every replica up, and it serves at once.
  for (const site of sites) {
    const { config } = deployment.configs.find((c) => c.kme === site.kme)!;
    const log = join(dir, `haproxy-${site.kme}.log`);
    await startHaproxy(site.haproxyFile, log, [config.sae_api.port, config.kme_api.port], teardown);
  }
  return logs;
}
