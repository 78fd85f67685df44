import { readFileSync } from 'node:fs';
import { COMMANDS } from './commands.js';
import { commandUsage, subcommandUsage, topUsage } from './help.js';
import { parseCommandLine, type CommandLine } from './parse.js';
import { UsageError, userError } from './usage-error.js';

type Runner = (line: CommandLine) => Promise<number>;

// Loaded only for the command that runs: help and mistakes answer at once.
const RUNNERS: Record<string, () => Promise<Runner>> = {
  demo: async () => (await import('./demo.js')).demoCommand,
  init: async () => (await import('./init-command.js')).initCommand,
  kme: async () => (await import('./kme.js')).kmeCommand,
  'master-key': async () => (await import('./master-key.js')).masterKeyCommand,
  controller: async () => (await import('./controller.js')).controllerCommand,
  service: async () => (await import('./service-command.js')).serviceCommand,
  pki: async () => (await import('./pki.js')).pkiCommand,
  sae: async () => (await import('./sae.js')).saeCommand,
  tunnel: async () => {
    const { tunnelCommand } = await import('./tunnel.js');
    return (line) => tunnelCommand(line, 'native');
  },
  stunnel: async () => {
    const { tunnelCommand } = await import('./tunnel.js');
    return (line) => tunnelCommand(line, 'stunnel');
  },
  ipsec: async () => (await import('./ipsec.js')).ipsecCommand,
  dashboard: async () => {
    const { operatorCommand } = await import('./dashboard.js');
    return (line) => operatorCommand('dashboard', line);
  },
  status: async () => {
    const { operatorCommand } = await import('./dashboard.js');
    return (line) => operatorCommand('status', line);
  },
};

/** Configuration files that fail their checks (the message names the file and the field), a KME that cannot start. */
async function configProblem(err: unknown): Promise<string | null> {
  const [{ ConfigError }, { IpsecConfigError }, { ControllerConfigError }] = await Promise.all([
    import('../kme/config.js'),
    import('../integrations/ipsec/agent-config.js'),
    import('../sdn/controller/config.js'),
  ]);
  const known = [ConfigError, IpsecConfigError, ControllerConfigError];
  return known.some((kind) => err instanceof kind) ? (err as Error).message : null;
}

const version = (): string =>
  (JSON.parse(readFileSync(new URL('../../../package.json', import.meta.url), 'utf8')) as { version: string }).version;

/** The command named on the line, for error messages: `qks pki issue`. */
let context = 'qks';

async function main(argv: string[]): Promise<number> {
  const [first, ...rest] = argv;
  if (first === '--version') {
    process.stdout.write(`qks ${version()}\n`);
    return 0;
  }
  if (first === undefined || first === 'help' || first === '--help' || first === '-h') {
    // `qks help help` is this text, as `help [COMMAND]` in it promises.
    const asked = first === 'help' && rest[0] !== 'help' ? rest[0] : undefined;
    const named = asked ? COMMANDS.find((c) => c.names.includes(asked)) : undefined;
    if (asked && !named) throw new UsageError(unknownCommand(asked));
    process.stdout.write(named ? commandUsage(named) : topUsage());
    return first === undefined ? 2 : 0;
  }
  const spec = COMMANDS.find((c) => c.names.includes(first));
  if (!spec) throw new UsageError(unknownCommand(first));
  const sub = spec.subcommands?.find((s) => s.name === rest[0]);
  context = `qks ${first}${sub ? ` ${sub.name}` : ''}`;
  const line = parseCommandLine(spec, first, rest);
  if (line.help) {
    process.stdout.write(line.sub ? subcommandUsage(spec, line.sub) : commandUsage(spec));
    return line.help === 'asked' ? 0 : 2;
  }
  return (await RUNNERS[first]!())(line);
}

const unknownCommand = (name: string) =>
  `unknown command "${name}"; the commands are ${COMMANDS.flatMap((c) => c.names).join(', ')}`;

// `qks status | head`: a reader that went away is no crash. Output stops; the command ends as it
// would (qks status at its next frame), its clean-up done.
process.stdout.on('error', (err: NodeJS.ErrnoException) => {
  if (err.code !== 'EPIPE') throw err;
});

// SIGHUP never ends a qks command (docs/operations.md): commands that reload or rotate add their action.
process.on('SIGHUP', () => undefined);

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  async (err: unknown) => {
    const known = userError(err) ?? (await configProblem(err));
    const hint = err instanceof UsageError ? ` (${context} --help)` : '';
    process.stderr.write(`${context}: ${known ?? (err as Error).message}${hint}\n`);
    if (known === null) process.stderr.write(process.env['QKS_DEBUG'] ? `${(err as Error).stack}\n` : '');
    process.exit(known === null ? 1 : 2);
  },
);
