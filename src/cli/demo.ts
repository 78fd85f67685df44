import { mkdtempSync, realpathSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { pino } from 'pino';
import { NetworkCollector } from '../dashboard/collector.js';
import { startDashboardServer } from '../dashboard/server.js';
import { loadConfig } from '../kme/config.js';
import { startKme, type RunningKme } from '../kme/kme.js';
import { Teardown } from '../kme/teardown.js';
import type { DEMO } from './commands.js';
import { demoDeployment } from './demo-dir.js';
import type { InitOptions } from './init.js';
import { linkOptions } from './init-command.js';
import { manifestOf, writeManifest, type Manifest } from './manifest.js';
import type { CommandLine } from './parse.js';
import { freePorts } from './ports.js';
import { qksInvocation, shellQuote } from './shell.js';
import { untilSignal } from './signals.js';

export type { Manifest as DemoManifest } from './manifest.js';

export interface DemoOptions {
  /** Keeps the deployment here; by default a temporary directory, deleted on exit. */
  readonly dir?: string;
  readonly manifest?: string;
  readonly source?: 'qkd' | 'simulated';
  readonly qkd?: InitOptions['qkd'];
  readonly rateBps?: number;
  readonly out?: (line: string) => void;
}

export async function demoCommand({ values }: CommandLine<typeof DEMO.options>): Promise<number> {
  await runDemo({
    ...(values.dir ? { dir: values.dir } : {}),
    ...(values.manifest ? { manifest: values.manifest } : {}),
    // A kept demo runs with its own link unless link options are given.
    ...(values.source || values.rate || values['distance-km'] ? linkOptions(values) : {}),
  });
  return 0;
}

/**
 * Two KMEs on loopback joined by a simulated link (by default the physics-level QKD simulator with
 * its post-processing between the two KMEs), with two SAEs each, until SIGINT or SIGTERM.
 */
export async function runDemo(opts: DemoOptions): Promise<void> {
  const out = opts.out ?? ((line: string) => process.stdout.write(line + '\n'));
  // Listened for before anything is made: a Ctrl-C (or a closed terminal) during start-up still
  // stops what was started and deletes the temporary directory.
  const stopAsked = untilSignal(['SIGINT', 'SIGTERM', 'SIGHUP']);
  const temporary = opts.dir === undefined;
  const dir = resolve(opts.dir ?? mkdtempSync(join(tmpdir(), 'qks-demo-')));
  const teardown = new Teardown();
  // The temporary directory holds master keys and CA keys: it goes when the demo does, last.
  if (temporary) {
    teardown.add(() => {
      rmSync(dir, { recursive: true, force: true });
      out(`deleted ${dir} (the demo's keys and certificates with it)`);
    });
  }
  const started = start(opts, dir, temporary, teardown);
  try {
    const first = await Promise.race([started.then(() => null), stopAsked]);
    if (first === null) out(`\n${await stopAsked}: stopping`);
    else await started.catch(() => undefined);
  } finally {
    await teardown.run();
  }
}

/** Everything the demo runs, each part's stop added to `teardown` as soon as it exists. */
async function start(opts: DemoOptions, dir: string, temporary: boolean, teardown: Teardown): Promise<void> {
  const out = opts.out ?? ((line: string) => process.stdout.write(line + '\n'));
  const [a1, a2, b1, b2] = await freePorts(4);
  const link = {
    ...(opts.source ? { source: opts.source } : {}),
    ...(opts.qkd ? { qkd: opts.qkd } : {}),
    ...(opts.rateBps ? { rateBps: opts.rateBps } : {}),
  };
  const deployment = await demoDeployment(dir, link, [
    { sae: a1!, kme: a2! },
    { sae: b1!, kme: b2! },
  ]);
  const logs = new Map(deployment.configs.map((c) => [c.kme, join(dir, `${c.kme}.log`)]));
  const kmes: RunningKme[] = [];
  for (const { kme, file } of deployment.configs) {
    const config = loadConfig(file);
    const logger = pino({ level: config.log_level }, pino.destination({ dest: logs.get(kme)!, sync: false }));
    const running = await startKme(config, logger);
    teardown.add(() => running.stop());
    kmes.push(running);
  }
  const operator = deployment.operator!;
  // The dashboard asks the KMEs over their API, as an operator would, with the operator certificate.
  const collector = new NetworkCollector({
    urls: kmes.map((k) => k.saeUrl),
    client: { ca: deployment.ca, cert: operator.cert, key: operator.key },
  });
  teardown.add(() => collector.close());
  const dashboardLog = pino({ level: 'warn' }, pino.destination({ dest: join(dir, 'dashboard.log'), sync: false }));
  const dashboard = await startDashboardServer({ view: () => collector.view(), log: dashboardLog });
  teardown.add(() => dashboard.close());
  const manifest: Manifest = { ...manifestOf(deployment, logs), dashboard: dashboard.url };
  const manifestFile = resolve(opts.manifest ?? join(dir, 'manifest.json'));
  printInstructions(out, manifest, manifestFile, deployment.configs[0]!.config.links[0]!.source, temporary);
  // Written last: whoever waits for the manifest also finds the instructions printed.
  writeManifest(manifestFile, manifest);
  // A manifest outside the temporary directory names files that go with it: it goes too.
  if (temporary && !manifestFile.startsWith(`${dir}/`)) teardown.add(() => rmSync(manifestFile, { force: true }));
}

function printInstructions(
  out: (line: string) => void,
  manifest: Manifest,
  manifestFile: string,
  link: { type: string; distance_km?: number },
  temporary: boolean,
): void {
  const [kmeA, kmeB] = manifest.kmes;
  const sae = (id: string) => manifest.saes.find((s) => s.id === id)!;
  const curl = (id: string, url: string) =>
    ['curl', '-s', '--cacert', manifest.ca, '--cert', sae(id).cert, '--key', sae(id).key, url]
      .map(shellQuote)
      .join(' ');
  const qks = qksInvocation();
  out(
    link.type === 'qkd'
      ? `QKS demo running: two KMEs joined by a simulated QKD link (decoy-state BB84 over ${link.distance_km ?? 25} km of modelled fibre, post-processed between the KMEs).`
      : `QKS demo running: two KMEs joined by a simulated QKD link (not QKD: a shared-seed simulator).`,
  );
  for (const k of manifest.kmes) out(`  ${k.id}: ${k.url}   (log ${k.log})`);
  out(`  SAEs: ${manifest.saes.map((s) => `${s.id}@${s.kme}`).join(', ')}`);
  out(`  manifest: ${manifestFile}`);
  const files = manifest.ca.replace(/\/pki\/.*$/, '');
  out(
    temporary
      ? `  files: ${files} (temporary: deleted when the demo stops; --dir DIR keeps them)`
      : `  files: ${files} (kept: ${qks} demo --dir ${shellQuote(files)} runs this demo again)`,
  );
  out('');
  out(`Dashboard (open in a browser on this machine): ${manifest.dashboard}`);
  out(`  in a terminal: ${qks} status --manifest ${shellQuote(manifestFile)}`);
  out('');
  out('Try it: sae-a1 (at kme-a) gets keys for sae-b1 (at kme-b), which fetches the same keys by ID.');
  out(`  ${curl('sae-a1', `${kmeA!.url}/api/v1/keys/sae-b1/status`)}`);
  out(`  ${curl('sae-a1', `${kmeA!.url}/api/v1/keys/sae-b1/enc_keys?number=1`)}`);
  out(`  ${curl('sae-b1', `${kmeB!.url}/api/v1/keys/sae-a1/dec_keys?key_ID=<key_ID from above>`)}`);
  out('The same with qks sae:');
  out(`  ${qks} sae get-key --manifest ${shellQuote(manifestFile)} --sae sae-a1 --slave sae-b1`);
  out(
    `  ${qks} sae get-key-with-ids --manifest ${shellQuote(manifestFile)} --sae sae-b1 --master sae-a1 --key-id '<key_ID>'`,
  );
  if (qks !== 'qks' && process.argv[1]) {
    out(
      `(For a shorter qks on the PATH: npm link, in ${shellQuote(resolve(dirname(realpathSync(process.argv[1])), '..'))}.)`,
    );
  }
  out('Press Ctrl-C to stop.');
}
