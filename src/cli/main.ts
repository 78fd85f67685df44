import { parseArgs } from 'node:util';
import { IpsecConfigError } from '../integrations/ipsec/agent-config.js';
import { ConfigError, loadConfig } from '../kme/config.js';
import { startKme } from '../kme/kme.js';
import { runDemo } from './demo.js';
import { initDeployment } from './init.js';
import { ipsecCommand, IPSEC_USAGE } from './ipsec.js';
import { pkiCommand } from './pki.js';
import { saeCommand } from './sae.js';
import { tunnelCommand, TUNNEL_USAGE } from './tunnel.js';
import { operatorCommand } from './dashboard.js';
import { untilSignal } from './signals.js';
import { UsageError } from './usage-error.js';

const USAGE = `Usage: qks <command> [options]

Commands:
  demo [--dir DIR] [--manifest FILE] [--source qkd|simulated] [--distance-km KM] [--rate BPS]
        Two KMEs on loopback joined by a simulated QKD link, two SAEs each; runs until Ctrl-C.
  init --dir DIR [--kmes kme-a,kme-b] [--saes-per-kme N] [--host H] [--source qkd|simulated]
       [--distance-km KM] [--rate BPS]
        Creates CAs, certificates, master keys, link seeds and one config file per KME.
  kme --config FILE
        Runs one KME from a configuration file (docs/configuration.md).
  pki <list|issue|revoke> --dir DIR ...
        The deployment's certificate authorities (qks pki help).
  tunnel|stunnel --role client|server ...
        A TCP tunnel over TLS 1.3 keyed by agreed QKD keys, natively or through stunnel (qks tunnel help).
  sae <status|get-key|get-key-with-ids|agree> ...
        Talks to a KME as an SAE, and runs the SAE-to-SAE key agreement (qks sae help).
  ipsec --config FILE
        An IPsec gateway's agent: QKD keys as IKEv2 PPKs in strongSwan or Libreswan (qks ipsec help).
  dashboard|status --manifest FILE | --kme URL[,URL...] --ca FILE --cert FILE --key FILE
        The operator dashboard for several KMEs (on loopback), or the same numbers in the terminal (qks status help).
`;

const LINK_OPTIONS = {
  source: { type: 'string' },
  'distance-km': { type: 'string' },
  rate: { type: 'string' },
} as const;

/** The link options of `init` and `demo`: `--rate` is the shared-seed simulator's, and implies it. */
function linkOptions(values: { source?: string; 'distance-km'?: string; rate?: string }) {
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

async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  switch (command) {
    case 'demo': {
      const { values } = parseArgs({
        args: rest,
        options: { dir: { type: 'string' }, manifest: { type: 'string' }, ...LINK_OPTIONS },
      });
      await runDemo({
        ...(values.dir ? { dir: values.dir } : {}),
        ...(values.manifest ? { manifest: values.manifest } : {}),
        ...linkOptions(values),
      });
      return 0;
    }
    case 'init': {
      const { values } = parseArgs({
        args: rest,
        options: {
          dir: { type: 'string' },
          kmes: { type: 'string' },
          'saes-per-kme': { type: 'string' },
          host: { type: 'string' },
          ...LINK_OPTIONS,
        },
      });
      if (!values.dir) throw new UsageError('init needs --dir DIR');
      const d = await initDeployment({
        dir: values.dir,
        ...(values.kmes ? { kmes: values.kmes.split(',') } : {}),
        ...(values['saes-per-kme'] ? { saesPerKme: positiveNumber(values['saes-per-kme'], '--saes-per-kme') } : {}),
        ...(values.host ? { host: values.host } : {}),
        ...linkOptions(values),
        operator: 'operator',
      });
      if (d.operator)
        process.stdout.write(`operator certificate (dashboard, qks status, /metrics): ${d.operator.cert}\n`);
      for (const c of d.configs) process.stdout.write(`${c.kme}: qks kme --config ${c.file}\n`);
      return 0;
    }
    case 'kme': {
      const { values } = parseArgs({ args: rest, options: { config: { type: 'string' } } });
      if (!values.config) throw new UsageError('kme needs --config FILE');
      const kme = await startKme(loadConfig(values.config));
      const signal = await untilSignal();
      kme.log.info({ signal }, 'stopping');
      await kme.stop();
      return 0;
    }
    case 'sae':
      return saeCommand(rest);
    case 'dashboard':
    case 'status':
      return operatorCommand(command, rest);
    case 'pki':
      return pkiCommand(rest);
    case 'tunnel':
    case 'stunnel':
      if (rest.length === 0 || rest[0] === 'help') {
        process.stdout.write(TUNNEL_USAGE);
        return rest.length === 0 ? 2 : 0;
      }
      return tunnelCommand(rest, command === 'stunnel' ? 'stunnel' : 'native');
    case 'ipsec':
      if (rest.length === 0 || rest[0] === 'help') {
        process.stdout.write(IPSEC_USAGE);
        return rest.length === 0 ? 2 : 0;
      }
      return ipsecCommand(rest);
    case undefined:
    case 'help':
    case '--help':
    case '-h':
      process.stdout.write(USAGE);
      return command === undefined ? 2 : 0;
    default:
      throw new UsageError(`unknown command: ${command}`);
  }
}

function positiveNumber(text: string, flag: string): number {
  const n = Number(text);
  if (!Number.isFinite(n) || n <= 0) throw new UsageError(`${flag} must be a positive number`);
  return n;
}

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (err: unknown) => {
    const known =
      err instanceof UsageError ||
      err instanceof ConfigError ||
      err instanceof IpsecConfigError ||
      (err as { code?: string }).code?.startsWith('ERR_PARSE_ARGS');
    process.stderr.write(`qks: ${(err as Error).message}\n${err instanceof UsageError ? `\n${USAGE}` : ''}`);
    if (!known && process.env['QKS_DEBUG']) process.stderr.write(`${(err as Error).stack}\n`);
    process.exit(known ? 2 : 1);
  },
);
