import { readFileSync } from 'node:fs';
import { IpsecConfigError } from '../integrations/ipsec/agent-config.js';
import { ConfigError } from '../kme/config.js';
import { COMMANDS } from './commands.js';
import { operatorCommand } from './dashboard.js';
import { demoCommand } from './demo.js';
import { commandUsage, subcommandUsage, topUsage } from './help.js';
import { initCommand } from './init-command.js';
import { ipsecCommand } from './ipsec.js';
import { kmeCommand } from './kme.js';
import { parseCommandLine, type CommandLine } from './parse.js';
import { pkiCommand } from './pki.js';
import { saeCommand } from './sae.js';
import { tunnelCommand } from './tunnel.js';
import { UsageError, userError } from './usage-error.js';

type Runner = (line: CommandLine) => Promise<number>;

const RUNNERS: Record<string, Runner> = {
  demo: demoCommand,
  init: initCommand,
  kme: kmeCommand,
  pki: pkiCommand,
  sae: saeCommand,
  tunnel: (line) => tunnelCommand(line, 'native'),
  stunnel: (line) => tunnelCommand(line, 'stunnel'),
  ipsec: ipsecCommand,
  dashboard: (line) => operatorCommand('dashboard', line),
  status: (line) => operatorCommand('status', line),
};

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
    const named = first === 'help' && rest[0] ? COMMANDS.find((c) => c.names.includes(rest[0]!)) : undefined;
    if (first === 'help' && rest[0] && !named) throw new UsageError(unknownCommand(rest[0]));
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
  return RUNNERS[first]!(line);
}

const unknownCommand = (name: string) =>
  `unknown command "${name}"; the commands are ${COMMANDS.flatMap((c) => c.names).join(', ')} (qks --help)`;

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (err: unknown) => {
    const known =
      userError(err) ?? (err instanceof ConfigError || err instanceof IpsecConfigError ? err.message : null);
    const hint = err instanceof UsageError ? ` (${context} --help)` : '';
    process.stderr.write(`${context}: ${known ?? (err as Error).message}${hint}\n`);
    if (known === null) process.stderr.write(process.env['QKS_DEBUG'] ? `${(err as Error).stack}\n` : '');
    process.exit(known === null ? 1 : 2);
  },
);
