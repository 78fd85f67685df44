import { rmSync } from 'node:fs';
import type { Deployment } from '../../src/cli/init.js';
import { freePorts } from '../../src/cli/ports.js';
import { writeReplicas, type ReplicatedSite } from '../../src/cli/replicas.js';
import { Haproxy } from './haproxy.js';
import { KmeProcesses } from './kme-process.js';
import { archiveAndCheckLogs } from './log-leaks.js';
import type { PgServer } from './postgres.js';
import { TestClient } from './sae-client.js';
import { createDeployment, type SiteOptions } from './two-kmes.js';

export interface ReplicaLabOptions extends SiteOptions {
  readonly replicas?: number;
  readonly leaseMs?: number;
  /** Where each KME's database lives: a database of this server per KME, or URLs of one's own. */
  readonly postgres: PgServer | ((kme: string) => Promise<string>);
}

/**
 * A deployment whose every KME runs as replicas (real `qks kme` processes) sharing one PostgreSQL
 * database per KME, behind a real HAProxy per site, as `writeReplicas` (qks init --replicas) makes
 * them. Processes are named `<kme>-<replica>`, e.g. `kme-a-r1`.
 */
export class ReplicaLab {
  deployment!: Deployment;
  sites!: ReplicatedSite[];
  procs!: KmeProcesses;
  readonly urls = new Map<string, string>();
  readonly #proxies: Haproxy[] = [];
  readonly #clients: TestClient[] = [];

  async start(opts: ReplicaLabOptions): Promise<void> {
    const { replicas = 2, leaseMs = 1000, postgres, ...siteOpts } = opts;
    this.deployment = await createDeployment(siteOpts);
    for (const { kme } of this.deployment.configs) {
      this.urls.set(kme, typeof postgres === 'function' ? await postgres(kme) : await postgres.createDatabase());
    }
    const ports = await freePorts(2 * replicas * this.deployment.configs.length);
    this.sites = writeReplicas(this.deployment, {
      count: replicas,
      postgresUrl: (kme) => this.urls.get(kme)!,
      ports,
      leaseMs,
    });
    this.procs = new KmeProcesses({
      ...this.deployment,
      configs: this.sites.flatMap((s) =>
        s.replicas.map((r) => ({ kme: `${s.kme}-${r.name}`, file: r.file, config: r.config })),
      ),
    });
    await Promise.all(this.processNames().map((p) => this.procs.start(p)));
    // HAProxy once the replicas listen: its first health checks find them up.
    for (const site of this.sites) {
      const { config } = this.deployment.configs.find((c) => c.kme === site.kme)!;
      this.#proxies.push(
        await Haproxy.run(site.haproxyFile, [
          { host: config.sae_api.host, port: config.sae_api.port },
          { host: config.kme_api.host, port: config.kme_api.port },
        ]),
      );
    }
  }

  processNames(kme?: string): string[] {
    return this.sites
      .filter((s) => kme === undefined || s.kme === kme)
      .flatMap((s) => s.replicas.map((r) => `${s.kme}-${r.name}`));
  }

  /** A client of `sae` through its site's HAProxy, or straight to one replica (`kme-a-r2`). */
  client(sae: string, replica?: string): TestClient {
    const creds = this.deployment.saes.find((s) => s.id === sae)!;
    const port = replica
      ? this.sites
          .flatMap((s) => s.replicas.map((r) => [`${s.kme}-${r.name}`, r.config.sae_api.port] as const))
          .find(([name]) => name === replica)![1]
      : this.deployment.configs.find((c) => c.kme === creds.kme)!.config.sae_api.port;
    const client = new TestClient(`https://127.0.0.1:${port}`, { ca: this.deployment.ca, ...creds });
    this.#clients.push(client);
    return client;
  }

  async stop(): Promise<void> {
    await this.procs?.killAll();
    await Promise.all(this.#proxies.map((p) => p.stop()));
    await Promise.all(this.#clients.map((c) => c.close()));
    if (this.deployment) {
      archiveAndCheckLogs(this.deployment.dir);
      rmSync(this.deployment.dir, { recursive: true, force: true });
    }
  }
}
