import { COMMANDS } from './commands.js';
import type { CommandSpec, Options, SubcommandSpec } from './spec.js';

const WIDTH = 30;

const sentence = (text: string) => text.charAt(0).toUpperCase() + text.slice(1) + '.';

function optionLines(options: Options, names: readonly string[] = Object.keys(options)): string {
  return names
    .map((name) => {
      const o = options[name]!;
      const flag = `  --${name}${o.arg ? ` ${o.arg}` : ''}`;
      return flag.length < WIDTH ? `${flag.padEnd(WIDTH)}${o.help}` : `${flag}\n${' '.repeat(WIDTH)}${o.help}`;
    })
    .join('\n');
}

const nameOf = (spec: CommandSpec) => spec.names.join('|');

/** `qks <command> --help`, `-h` and `help`. */
export function commandUsage(spec: CommandSpec): string {
  const parts = [`Usage: qks ${nameOf(spec)} ${spec.args}`, sentence(spec.summary)];
  if (spec.about) parts.push(spec.about);
  if (spec.subcommands) {
    const subs = spec.subcommands.map((s) => `  ${s.name} ${s.args}\n        ${s.summary}`).join('\n');
    parts.push(`Commands (qks ${spec.names[0]} COMMAND --help: its options):\n${subs}`);
  }
  parts.push(`Options:\n${optionLines(spec.options)}`);
  if (spec.docs) parts.push(`More: ${spec.docs}`);
  return parts.join('\n\n') + '\n';
}

/** `qks <command> <subcommand> --help`. */
export function subcommandUsage(spec: CommandSpec, sub: SubcommandSpec): string {
  const parts = [`Usage: qks ${spec.names[0]} ${sub.name} ${sub.args}`, sentence(sub.summary)];
  if (spec.about) parts.push(spec.about);
  parts.push(`Options:\n${optionLines(spec.options, sub.options)}`);
  if (spec.docs) parts.push(`More: ${spec.docs}`);
  return parts.join('\n\n') + '\n';
}

/** `qks`, `qks help`, `qks --help`. */
export function topUsage(): string {
  const lines = COMMANDS.map((c) => `  ${nameOf(c)} ${c.args}\n        ${sentence(c.summary)}`);
  return `Usage: qks <command> [options]

Commands:
${lines.join('\n')}
  help [COMMAND]
        This text, or a command's own (as does qks COMMAND --help).

Options:
  --version                   QKS's version
`;
}

/** The cells of the README's command table: `qks <names> <args>` and what it does. */
export const readmeRows = (): Array<[string, string]> =>
  COMMANDS.map((c) => [`qks ${nameOf(c)} ${c.args}`, c.docs ? `${c.summary} ([docs](${c.docs}))` : c.summary]);

/** docs/cli.md: every help text, as the commands print them. */
export function cliReference(): string {
  const sections = COMMANDS.flatMap((c) => [
    `## qks ${nameOf(c)}\n\n\`\`\`text\n${commandUsage(c)}\`\`\``,
    ...(c.subcommands ?? []).map(
      (s) => `### qks ${c.names[0]} ${s.name}\n\n\`\`\`text\n${subcommandUsage(c, s)}\`\`\``,
    ),
  ]);
  return (
    [
      '# The qks command',
      '<!-- Made from src/cli/commands.ts by `npm run docs:cli`; a test checks it is current. -->',
      `\`\`\`text\n${topUsage()}\`\`\``,
      ...sections,
    ].join('\n\n') + '\n'
  );
}
