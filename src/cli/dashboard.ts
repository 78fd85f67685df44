import { pino } from 'pino';
import { NetworkCollector } from '../dashboard/collector.js';
import { allAnswered } from '../dashboard/network.js';
import { startDashboardServer } from '../dashboard/server.js';
import { withController } from '../dashboard/controller-panel.js';
import { renderStatus } from '../dashboard/status-view.js';
import type { KmeClientOptions } from '../sae/kme-client.js';
import { TokenClient } from '../sae/token-client.js';
import type { DASHBOARD, STATUS } from './commands.js';
import { readManifest } from './manifest.js';
import { checkReadable, fromManifest, type NamedFile } from './named-files.js';
import type { CommandLine } from './parse.js';
import type { ValuesOf } from './spec.js';
import { hostPort } from './sae.js';
import { untilSignal } from './signals.js';
import { UsageError } from './usage-error.js';

type Values = ValuesOf<typeof DASHBOARD.options & typeof STATUS.options>;

const certFlags = (c: { cert: string; key: string }): NamedFile[] => [
  { what: '--cert', path: c.cert },
  { what: '--key', path: c.key },
];

function collectorFrom(v: Values): {
  collector: NetworkCollector;
  tokens: TokenClient | undefined;
  controllerUrl?: string | undefined;
} {
  let urls: string[];
  let ids: string[] = [];
  let controllerUrl: string | undefined;
  let client: Omit<KmeClientOptions, 'url'>;
  if (v.cert !== undefined && v.key === undefined) throw new UsageError('--cert needs --key');
  if (v.key !== undefined && v.cert === undefined) throw new UsageError('--key needs --cert');
  const given = v.cert && v.key ? { cert: v.cert, key: v.key } : undefined;
  let files: NamedFile[];
  if (v.manifest) {
    if (v.kme || v.ca) throw new UsageError(`give --manifest or --kme and --ca, not both`);
    const m = readManifest(v.manifest);
    urls = m.kmes.map((k) => k.url);
    ids = m.kmes.map((k) => k.id);
    controllerUrl = m.controller?.url;
    // --cert and --key name another operator than the manifest's.
    const operator = given ?? m.operator;
    if (!operator && !v.issuer)
      throw new UsageError(`${v.manifest} names no operator certificate: give --cert and --key, or --issuer`);
    client = { ca: m.ca, ...(operator ? { cert: operator.cert, key: operator.key } : {}) };
    const named = `--manifest ${v.manifest}`;
    files = given
      ? [{ what: `${named}: the CA`, path: m.ca }, ...certFlags(given)]
      : m.operator
        ? fromManifest(named, m.operator.id, { ...m.operator, ca: m.ca })
        : [{ what: `${named}: the CA`, path: m.ca }];
  } else {
    if (!v.kme || !v.ca) throw new UsageError('give --manifest, or --kme URL[,URL...] and --ca FILE');
    urls = v.kme.split(',');
    client = { ca: v.ca, ...given };
    files = [{ what: '--ca', path: v.ca }, ...(given ? certFlags(given) : [])];
  }
  checkReadable(files);
  let tokens: TokenClient | undefined;
  if (v.issuer) {
    const secret = v['client-secret'] ?? process.env['QKS_CLIENT_SECRET'];
    if (!v['client-id'] || !secret) throw new UsageError('--issuer needs --client-id and QKS_CLIENT_SECRET');
    tokens = new TokenClient({
      issuer: v.issuer,
      clientId: v['client-id'],
      clientSecret: secret,
      scope: 'qks:admin',
      ...(v.resource ? { resource: v.resource } : {}),
    });
    client = { ...client, authHeaders: tokens.headers };
  } else if (!client.cert || !client.key) {
    throw new UsageError('give an operator certificate (--cert and --key) or a token issuer (--issuer)');
  }
  return { collector: new NetworkCollector({ urls, ids, client }), tokens, controllerUrl };
}

export async function operatorCommand(command: 'dashboard' | 'status', line: CommandLine): Promise<number> {
  const v = line.values as Values;
  const { collector, tokens, controllerUrl } = collectorFrom(v);
  try {
    if (command === 'status') return await status(collector, v);
    const listen = v.listen ? hostPort(v.listen, '--listen') : { host: '127.0.0.1', port: 0 };
    const dashboard = await startDashboardServer({
      ...listen,
      view: withController(
        () => collector.view(),
        () => controllerUrl,
      ),
      log: pino({ level: 'warn' }),
    }).catch((err: Error) => {
      throw new UsageError(err.message);
    });
    process.stdout.write(`QKS dashboard: ${dashboard.url}\n`);
    await untilSignal();
    await dashboard.close();
    return 0;
  } finally {
    await collector.close();
    await tokens?.close();
  }
}

async function status(collector: NetworkCollector, v: Values): Promise<number> {
  const interval = Number(v.interval ?? 1);
  if (!(interval > 0)) throw new UsageError('--interval must be a positive number of seconds');
  const colour = process.stdout.isTTY === true;
  if (v.once) {
    const view = await collector.view();
    process.stdout.write(renderStatus(view, { colour }));
    return allAnswered(view) ? 0 : 1;
  }
  let stopped = false;
  void untilSignal().then(() => (stopped = true));
  while (!stopped && !process.stdout.destroyed) {
    const text = renderStatus(await collector.view(), { colour });
    // Home and clear below: redraws in place without flicker.
    process.stdout.write(colour ? `\x1b[H\x1b[2J${text}` : `${text}\n`);
    await new Promise((r) => setTimeout(r, interval * 1000));
  }
  return 0;
}
