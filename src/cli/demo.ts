import { mkdtempSync, renameSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { pino } from 'pino';
import { loadConfig } from '../kme/config.js';
import { startKme, type RunningKme } from '../kme/kme.js';
import { initDeployment, type InitOptions } from './init.js';
import { freePorts } from './ports.js';
import { untilSignal } from './signals.js';
import { NetworkCollector } from '../dashboard/collector.js';
import { startDashboardServer, type RunningDashboard } from '../dashboard/server.js';

export interface DemoOptions {
  readonly dir?: string;
  readonly manifest?: string;
  readonly source?: 'qkd' | 'simulated';
  readonly qkd?: InitOptions['qkd'];
  readonly rateBps?: number;
  readonly out?: (line: string) => void;
}

/** The manifest a demo writes when ready, for scripts and tests that drive it. */
export interface DemoManifest {
  ca: string;
  kmes: Array<{ id: string; url: string; config: string; log: string }>;
  saes: Array<{ id: string; kme: string; cert: string; key: string }>;
  /** An administrator's certificate: the dashboard, `qks status`, /metrics. */
  operator?: { id: string; cert: string; key: string };
  /** The dashboard's URL, with its access token. */
  dashboard?: string;
}

/**
 * Two KMEs on loopback joined by a simulated link (by default the physics-level QKD simulator with
 * its post-processing between the two KMEs), with two SAEs each, until SIGINT or SIGTERM.
 */
export async function runDemo(opts: DemoOptions): Promise<void> {
  const out = opts.out ?? ((line: string) => process.stdout.write(line + '\n'));
  const dir = resolve(opts.dir ?? mkdtempSync(join(tmpdir(), 'qks-demo-')));
  const [a1, a2, b1, b2] = await freePorts(4);
  const deployment = await initDeployment({
    dir,
    ports: [
      { sae: a1!, kme: a2! },
      { sae: b1!, kme: b2! },
    ],
    source: opts.source ?? 'qkd',
    ...(opts.qkd ? { qkd: opts.qkd } : {}),
    ...(opts.rateBps ? { rateBps: opts.rateBps } : {}),
    operator: 'operator',
  });
  const kmes: Array<{ kme: RunningKme; log: string; config: string }> = [];
  try {
    for (const { kme, file } of deployment.configs) {
      const log = join(dir, `${kme}.log`);
      const config = loadConfig(file);
      const logger = pino({ level: config.log_level }, pino.destination({ dest: log, sync: false }));
      kmes.push({ kme: await startKme(config, logger), log, config: file });
    }
  } catch (err) {
    await Promise.all(kmes.map((k) => k.kme.stop()));
    throw err;
  }
  const operator = deployment.operator!;
  // The dashboard asks the KMEs over their API, as an operator would, with the operator certificate.
  const collector = new NetworkCollector({
    urls: kmes.map((k) => k.kme.saeUrl),
    client: { ca: deployment.ca, cert: operator.cert, key: operator.key },
  });
  const dashboardLog = pino({ level: 'warn' }, pino.destination({ dest: join(dir, 'dashboard.log'), sync: false }));
  const dashboard: RunningDashboard = await startDashboardServer({ view: () => collector.view(), log: dashboardLog });
  const manifest: DemoManifest = {
    ca: deployment.ca,
    kmes: kmes.map((k) => ({ id: k.kme.id, url: k.kme.saeUrl, config: k.config, log: k.log })),
    saes: deployment.saes.map((s) => ({ ...s })),
    operator: { ...operator },
    dashboard: dashboard.url,
  };
  const manifestFile = resolve(opts.manifest ?? join(dir, 'manifest.json'));

  const [kmeA, kmeB] = manifest.kmes;
  const sae = (id: string) => manifest.saes.find((s) => s.id === id)!;
  const curl = (id: string) => `curl -s --cacert ${manifest.ca} --cert ${sae(id).cert} --key ${sae(id).key}`;
  const link = deployment.configs[0]!.config.links[0]!.source;
  out(
    link.type === 'qkd'
      ? `QKS demo running: two KMEs joined by a simulated QKD link (decoy-state BB84 over ${link.distance_km ?? 25} km of modelled fibre, post-processed between the KMEs).`
      : `QKS demo running: two KMEs joined by a simulated QKD link (not QKD: a shared-seed simulator).`,
  );
  for (const k of manifest.kmes) out(`  ${k.id}: ${k.url}   (log ${k.log})`);
  out(`  SAEs: ${manifest.saes.map((s) => `${s.id}@${s.kme}`).join(', ')}`);
  out(`  manifest: ${manifestFile}`);
  out('');
  out(`Dashboard (open in a browser on this machine): ${dashboard.url}`);
  out(`  in a terminal: qks status --manifest ${manifestFile}`);
  out('');
  out('Try it: sae-a1 (at kme-a) gets keys for sae-b1 (at kme-b), which fetches the same keys by ID.');
  out(`  ${curl('sae-a1')} ${kmeA!.url}/api/v1/keys/sae-b1/status`);
  out(`  ${curl('sae-a1')} ${kmeA!.url}/api/v1/keys/sae-b1/enc_keys?number=1`);
  out(`  ${curl('sae-b1')} '${kmeB!.url}/api/v1/keys/sae-a1/dec_keys?key_ID=<key_ID from above>'`);
  out('Press Ctrl-C to stop.');
  // Written last: whoever waits for the manifest also finds the instructions printed.
  writeFileSync(`${manifestFile}.tmp`, JSON.stringify(manifest, null, 2) + '\n');
  renameSync(`${manifestFile}.tmp`, manifestFile);

  const signal = await untilSignal();
  out(`\n${signal}: stopping`);
  await dashboard.close();
  await collector.close();
  await Promise.all(kmes.map((k) => k.kme.stop()));
}
