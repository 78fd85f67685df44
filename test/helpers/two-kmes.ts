import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { initDeployment, type Deployment, type InitOptions } from '../../src/cli/init.js';
import { freePorts } from '../../src/cli/ports.js';
import { loadConfig, type KmeConfig } from '../../src/kme/config.js';
import { startKme, type RunningKme } from '../../src/kme/kme.js';
import type { KeyStore } from '../../src/stores/key-store.js';
import { TestClient } from './sae-client.js';
import { archiveAndCheckLogs } from './log-leaks.js';

export type SiteOptions = Omit<InitOptions, 'dir' | 'ports'> & {
  /** Per KME: its link ends produce each block this many ms after the other end does. */
  readonly linkLagMs?: Readonly<Record<string, number>>;
  /** Changes each KME's loaded configuration before it starts (settings `qks init` does not write). */
  readonly configure?: (config: KmeConfig) => void;
  /** Wraps each KME's key store (e.g. to watch which blocks are consumed). */
  readonly wrapStore?: (kme: string, store: KeyStore) => KeyStore;
};

/**
 * A deployment of KMEs made by `qks init` in a temporary directory, with ports free now. Links use
 * the fast shared-seed simulator unless `source: 'qkd'` is asked for: most tests are about the
 * KMEs, not the link, and want material at a known rate from the start.
 */
export async function createDeployment(opts: SiteOptions = {}): Promise<Deployment> {
  const dir = mkdtempSync(join(tmpdir(), 'qks-test-'));
  const kmes = opts.topology?.sites.map((s) => s.kme) ?? opts.kmes ?? ['kme-a', 'kme-b'];
  const ports = await freePorts(kmes.length * 2);
  return initDeployment({
    source: 'simulated',
    ...opts,
    dir,
    ...(opts.topology ? {} : { kmes }),
    ports: kmes.map((_, i) => ({ sae: ports[2 * i]!, kme: ports[2 * i + 1]! })),
  });
}

export interface TwoSites {
  readonly deployment: Deployment;
  readonly kmes: Map<string, RunningKme>;
  /** A client holding the named SAE's certificate, talking to that SAE's own KME. */
  sae(id: string): TestClient;
  /** A client holding the named SAE's certificate, talking to the given KME. */
  saeAt(id: string, kme: string): TestClient;
  /** Starts (again) a KME of the deployment, in this process. */
  startKme(id: string): Promise<RunningKme>;
  stopKme(id: string): Promise<void>;
  stop(): Promise<void>;
}

/** Starts every KME of a fresh deployment in this process; logs go to files in its directory. */
export async function startSites(opts: SiteOptions = {}): Promise<TwoSites> {
  const initOpts: SiteOptions = { ...opts };
  delete (initOpts as { linkLagMs?: unknown }).linkLagMs;
  delete (initOpts as { configure?: unknown }).configure;
  delete (initOpts as { wrapStore?: unknown }).wrapStore;
  const deployment = await createDeployment(initOpts);
  const kmes = new Map<string, RunningKme>();
  const clients: TestClient[] = [];
  const start = async (id: string) => {
    const { file } = deployment.configs.find((c) => c.kme === id)!;
    const log = pino({ level: 'debug' }, pino.destination({ dest: join(deployment.dir, `${id}.log`), sync: true }));
    const config = loadConfig(file);
    opts.configure?.(config);
    const lag = opts.linkLagMs?.[id] ?? 0;
    // A later epoch at one end of a shared-seed link: the same blocks (they derive from seed and
    // number), later.
    for (const link of config.links) {
      if (lag && link.source.type === 'simulated')
        link.source = { ...link.source, epoch_ms: link.source.epoch_ms + lag };
    }
    const wrap = opts.wrapStore;
    const kme = await startKme(config, log, wrap ? { wrapStore: (s) => wrap(id, s) } : {});
    kmes.set(id, kme);
    return kme;
  };
  for (const c of deployment.configs) await start(c.kme);
  const client = (id: string, kme: string) => {
    const sae = deployment.saes.find((s) => s.id === id);
    if (!sae) throw new Error(`no SAE ${id}`);
    const config = deployment.configs.find((c) => c.kme === kme)!.config;
    const c = new TestClient(`https://127.0.0.1:${config.sae_api.port}`, {
      ca: deployment.ca,
      cert: sae.cert,
      key: sae.key,
    });
    clients.push(c);
    return c;
  };
  return {
    deployment,
    kmes,
    sae: (id) => client(id, deployment.saes.find((s) => s.id === id)!.kme),
    saeAt: client,
    startKme: start,
    stopKme: async (id) => {
      await kmes.get(id)?.stop();
      kmes.delete(id);
    },
    stop: async () => {
      await Promise.all(clients.map((c) => c.close()));
      await Promise.all([...kmes.values()].map((k) => k.stop()));
      try {
        archiveAndCheckLogs(deployment.dir);
      } finally {
        rmSync(deployment.dir, { recursive: true, force: true });
      }
    },
  };
}

/** Waits until `check` returns true, polling; fails after `timeoutMs`. */
export async function eventually(check: () => Promise<boolean> | boolean, timeoutMs = 5000, what = 'condition') {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}
