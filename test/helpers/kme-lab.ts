import { rmSync } from 'node:fs';
import type { Deployment } from '../../src/cli/init.js';
import { KmeProcesses } from './kme-process.js';
import { archiveAndCheckLogs } from './log-leaks.js';
import { TestClient } from './sae-client.js';
import { createDeployment, type SiteOptions } from './two-kmes.js';

/**
 * The set-up the kill and restart tests share: the KMEs of a fresh deployment as real processes
 * (KmeProcesses), and a client per SAE, made when first asked for. `start` in `before`; `stop` in
 * `after`, whatever happened before it.
 */
export class KmeLab {
  #deployment: Deployment | undefined;
  #procs: KmeProcesses | undefined;
  readonly #clients = new Map<string, TestClient>();

  get deployment(): Deployment {
    if (!this.#deployment) throw new Error('the lab has not started');
    return this.#deployment;
  }

  get procs(): KmeProcesses {
    if (!this.#procs) throw new Error('the lab has not started');
    return this.#procs;
  }

  /** Creates the deployment and starts all its KMEs; resolves once every one listens. */
  async start(opts: SiteOptions = {}): Promise<void> {
    const deployment = (this.#deployment = await createDeployment(opts));
    const procs = (this.#procs = new KmeProcesses(deployment));
    await Promise.all(deployment.configs.map((c) => procs.start(c.kme)));
  }

  /** A client holding the SAE's certificate, talking to the SAE's own KME. */
  client(sae: string): TestClient {
    let c = this.#clients.get(sae);
    if (!c) {
      const d = this.deployment;
      const creds = d.saes.find((s) => s.id === sae)!;
      const { config } = d.configs.find((x) => x.kme === creds.kme)!;
      c = new TestClient(`https://127.0.0.1:${config.sae_api.port}`, { ca: d.ca, ...creds });
      this.#clients.set(sae, c);
    }
    return c;
  }

  dataDir(kme: string): string {
    return this.deployment.configs.find((c) => c.kme === kme)!.config.data_dir;
  }

  /**
   * Kills the KMEs (SIGKILL ends a stopped one too), closes the clients, checks the logs for key
   * material and removes the deployment's directory.
   */
  async stop(): Promise<void> {
    await this.#procs?.killAll();
    await Promise.all([...this.#clients.values()].map((c) => c.close()));
    if (this.#deployment) archiveAndCheckLogs(this.#deployment.dir);
    if (this.#deployment) rmSync(this.#deployment.dir, { recursive: true, force: true });
  }
}
