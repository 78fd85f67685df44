import { mkdtempSync, realpathSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { pino } from 'pino';
import { NetworkCollector } from '../dashboard/collector.js';
import { startDashboardServer } from '../dashboard/server.js';
import { withController } from '../dashboard/controller-panel.js';
import { loadConfig } from '../kme/config.js';
import { startKme } from '../kme/kme.js';
import { Teardown } from '../kme/teardown.js';
import type { DEMO } from './commands.js';
import { demoDeployment } from './demo-dir.js';
import type { Deployment, InitOptions } from './init.js';
import { linkOptions, positiveNumber } from './init-command.js';
import { startReplicatedDemo } from './demo-replicas.js';
import { UsageError } from './usage-error.js';
import { manifestOf, writeManifest, type Manifest } from './manifest.js';
import type { CommandLine } from './parse.js';
import { freePorts } from './ports.js';
import { qksInvocation, shellQuote } from './shell.js';
import { untilSignal } from './signals.js';
import { writeControllerConfig } from './controller-config.js';
import { loadControllerConfig } from '../sdn/controller/config.js';
import { startController } from '../sdn/controller/run.js';
import { topologyOption } from './topology-option.js';
import type { Topology } from '../domain/topology.js';

export type { Manifest as DemoManifest } from './manifest.js';

export interface DemoOptions {
  /** Keeps the deployment here; by default a temporary directory, deleted on exit. */
  readonly dir?: string;
  readonly manifest?: string;
  readonly source?: 'qkd' | 'simulated';
  readonly qkd?: InitOptions['qkd'];
  readonly rateBps?: number;
  /** Sites and links; by default two sites joined by one link. */
  readonly topology?: Topology;
  /** Each KME as this many replicas on a PostgreSQL of the demo's own, behind HAProxy. */
  readonly replicas?: number;
  readonly out?: (line: string) => void;
}

export async function demoCommand({ values }: CommandLine<typeof DEMO.options>): Promise<number> {
  await runDemo({
    ...(values.dir ? { dir: values.dir } : {}),
    ...(values.manifest ? { manifest: values.manifest } : {}),
    ...(values.topology ? { topology: topologyOption(values.topology) } : {}),
    // A kept demo runs with its own link unless link options are given.
    ...(values.source || values.rate || values['distance-km'] ? linkOptions(values) : {}),
    ...(values.replicas ? replicaOptions(values) : {}),
  });
  return 0;
}

/**
 * `--replicas N`: the links are simulated unless `--source qkd` (or `--distance-km`) asks for the
 * QKD link simulator, whose post-processing then moves between replicas (docs/qkd-link.md).
 */
function replicaOptions(values: CommandLine<typeof DEMO.options>['values']) {
  const replicas = positiveNumber(values.replicas!, '--replicas');
  if (!Number.isInteger(replicas) || replicas < 2) throw new UsageError('--replicas must be a whole number, 2 or more');
  const qkd = values.source === 'qkd' || values['distance-km'] !== undefined;
  return { replicas, ...(qkd ? {} : { source: 'simulated' as const }) };
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
  const ports = async (n: number) => {
    const free = await freePorts(2 * n);
    return Array.from({ length: n }, (_, i) => ({ sae: free[2 * i]!, kme: free[2 * i + 1]! }));
  };
  const link = {
    ...(opts.source ? { source: opts.source } : {}),
    ...(opts.qkd ? { qkd: opts.qkd } : {}),
    ...(opts.rateBps ? { rateBps: opts.rateBps } : {}),
  };
  const deployment = await demoDeployment(dir, link, ports, opts.topology);
  const logs = opts.replicas
    ? await startReplicatedDemo(deployment, opts.replicas, dir, teardown)
    : await startKmes(deployment, dir, teardown);
  const operator = deployment.operator!;
  // The dashboard asks the KMEs over their API, as an operator would, with the operator certificate.
  const collector = new NetworkCollector({
    urls: deployment.configs.map(({ config }) => `https://${config.sae_api.host}:${config.sae_api.port}`),
    client: { ca: deployment.ca, cert: operator.cert, key: operator.key },
  });
  teardown.add(() => collector.close());
  const dashboardLog = pino({ level: 'warn' }, pino.destination({ dest: join(dir, 'dashboard.log'), sync: false }));
  let controllerUrl: string | undefined;
  const dashboard = await startDashboardServer({
    view: withController(
      () => collector.view(),
      () => controllerUrl,
    ),
    log: dashboardLog,
  });
  teardown.add(() => dashboard.close());
  const manifest: Manifest = { ...manifestOf(deployment, logs), dashboard: dashboard.url };
  if (opts.topology || deployment.topology.sites.length > 2) {
    // The SDN controller over the network's KMEs, its PCE on a free port (4189 may be taken).
    const [pcepPort] = await freePorts(1);
    const config = loadControllerConfig(writeControllerConfig(deployment, { host: '127.0.0.1', port: pcepPort! }));
    const controllerLog = pino({ level: 'info' }, pino.destination({ dest: join(dir, 'controller.log'), sync: false }));
    const controller = await startController(config, controllerLog);
    teardown.add(() => controller.stop());
    manifest.controller = { url: controller.url, pcep: `${controller.pcep.host}:${controller.pcep.port}` };
    controllerUrl = controller.url;
  }
  const manifestFile = resolve(opts.manifest ?? join(dir, 'manifest.json'));
  const firstLink = deployment.configs[0]!.config.links[0]!.source;
  printInstructions(out, manifest, manifestFile, firstLink, temporary, opts.replicas);
  // Written last: whoever waits for the manifest also finds the instructions printed.
  writeManifest(manifestFile, manifest);
  // A manifest outside the temporary directory names files that go with it: it goes too.
  if (temporary && !manifestFile.startsWith(`${dir}/`)) teardown.add(() => rmSync(manifestFile, { force: true }));
}

/** One KME process per site, in this process; returns each KME's log. */
async function startKmes(deployment: Deployment, dir: string, teardown: Teardown): Promise<Map<string, string>> {
  const logs = new Map(deployment.configs.map((c) => [c.kme, join(dir, `${c.kme}.log`)]));
  for (const { kme, file } of deployment.configs) {
    const config = loadConfig(file);
    const logger = pino({ level: config.log_level }, pino.destination({ dest: logs.get(kme)!, sync: false }));
    const running = await startKme(config, logger);
    teardown.add(() => running.stop());
  }
  return logs;
}

function printInstructions(
  out: (line: string) => void,
  manifest: Manifest,
  manifestFile: string,
  link: { type: string; distance_km?: number },
  temporary: boolean,
  replicas?: number,
): void {
  // The example pair: the first SAE at each end of the first link.
  const firstLink = manifest.links?.[0] ?? { a: manifest.kmes[0]!.id, b: manifest.kmes[1]!.id };
  const kmeA = manifest.kmes.find((k) => k.id === firstLink.a)!;
  const kmeB = manifest.kmes.find((k) => k.id === firstLink.b)!;
  const [master, slave] = [kmeA, kmeB].map((k) => manifest.saes.find((s) => s.kme === k.id)!.id) as [string, string];
  const sae = (id: string) => manifest.saes.find((s) => s.id === id)!;
  const curl = (id: string, url: string) =>
    ['curl', '-s', '--cacert', manifest.ca, '--cert', sae(id).cert, '--key', sae(id).key, url]
      .map(shellQuote)
      .join(' ');
  const qks = qksInvocation();
  const linkKind =
    link.type === 'qkd'
      ? `decoy-state BB84 over ${link.distance_km ?? 25} km of modelled fibre, post-processed between the KMEs`
      : 'not QKD: a shared-seed simulator';
  const links = manifest.links?.length ?? 1;
  out(
    manifest.kmes.length === 2
      ? `QKS demo running: two KMEs joined by a simulated QKD link (${linkKind}).`
      : `QKS demo running: ${manifest.kmes.length} KMEs joined by ${links} simulated QKD links (${linkKind}).`,
  );
  for (const k of manifest.kmes) {
    const node = k.node_address ? `node ${k.node_address}, ` : '';
    out(`  ${k.id}: ${k.url}   (${node}log ${k.log})`);
  }
  if (replicas) {
    out(
      `  each KME: ${replicas} replicas sharing a PostgreSQL database of the demo's own, behind HAProxy at its address`,
    );
  }
  if (manifest.kmes.length > 2) {
    out(`  links: ${manifest.links!.map((l) => l.id).join(', ')}`);
  }
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
  if (manifest.controller) {
    out(`SDN controller: ${manifest.controller.url}/api/v1/network, PCEP on ${manifest.controller.pcep} (docs/sdn.md)`);
  }
  out('');
  out(`Try it: ${master} (at ${kmeA.id}) gets keys for ${slave} (at ${kmeB.id}), which fetches the same keys by ID.`);
  out(`  ${curl(master, `${kmeA.url}/api/v1/keys/${slave}/status`)}`);
  out(`  ${curl(master, `${kmeA.url}/api/v1/keys/${slave}/enc_keys?number=1`)}`);
  out(`  ${curl(slave, `${kmeB.url}/api/v1/keys/${master}/dec_keys?key_ID=<key_ID from above>`)}`);
  // A pair of sites without a common link, when the topology has one: its keys are relayed.
  const linked = (x: string, y: string) =>
    (manifest.links ?? []).some((l) => [l.a, l.b].includes(x) && [l.a, l.b].includes(y));
  const apart = manifest.kmes.flatMap((x) =>
    manifest.kmes.filter((y) => x.id < y.id && !linked(x.id, y.id)).map((y) => [x, y] as const),
  )[0];
  if (apart) {
    const [from, to] = apart.map((k) => manifest.saes.find((s) => s.kme === k.id)!.id) as [string, string];
    out(`Keys for ${to} (at ${apart[1].id}, no link with ${apart[0].id}) are relayed through trusted nodes:`);
    out(`  ${curl(from, `${apart[0].url}/api/v1/keys/${to}/enc_keys?number=1`)}`);
  }
  out('The same with qks sae:');
  out(`  ${qks} sae get-key --manifest ${shellQuote(manifestFile)} --sae ${master} --slave ${slave}`);
  out(
    `  ${qks} sae get-key-with-ids --manifest ${shellQuote(manifestFile)} --sae ${slave} --master ${master} --key-id '<key_ID>'`,
  );
  if (qks !== 'qks' && process.argv[1]) {
    out(
      `(For a shorter qks on the PATH: npm link, in ${shellQuote(resolve(dirname(realpathSync(process.argv[1])), '..'))}.)`,
    );
  }
  out('Press Ctrl-C to stop.');
}
