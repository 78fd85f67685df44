import { parseArgs } from 'node:util';
import { COMMANDS } from './commands.js';
import type { CommandSpec, Options, SubcommandSpec, ValuesOf } from './spec.js';
import { UsageError } from './usage-error.js';

export interface CommandLine<O extends Options = Options> {
  /** The name it was called by (`tunnel` or `stunnel`). */
  readonly name: string;
  readonly sub?: SubcommandSpec;
  readonly values: ValuesOf<O>;
  /** `asked`: --help, -h or help; `missing`: a command that needs a subcommand got none. */
  readonly help?: 'asked' | 'missing';
}

const isHelp = (arg: string) => arg === '--help' || arg === '-h';

/**
 * Splits `qks <name> [sub] [options]`: help in any of its three forms, a named subcommand, and only
 * the options this command (or subcommand) takes, with messages that say what is wrong.
 */
export function parseCommandLine<O extends Options>(spec: CommandSpec & { options: O }, name: string, args: string[]) {
  let rest = args;
  let sub: SubcommandSpec | undefined;
  const asked = (): CommandLine<O> => ({ name, ...(sub ? { sub } : {}), values: {}, help: 'asked' });
  const wantsHelp = (list: string[]) => {
    const end = list.indexOf('--');
    return list.slice(0, end < 0 ? undefined : end).some(isHelp) || list[0] === 'help';
  };
  if (spec.subcommands) {
    const [first, ...after] = args;
    if (first === undefined) return { name, values: {}, help: 'missing' } as CommandLine<O>;
    sub = spec.subcommands.find((s) => s.name === first);
    if (!sub) {
      if (wantsHelp(args)) return asked();
      const names = spec.subcommands.map((s) => s.name).join(', ');
      if (first.startsWith('-'))
        throw new UsageError(
          `the ${name} command comes before the options (qks ${name} COMMAND --option ...): ${names}`,
        );
      throw new UsageError(`unknown ${name} command "${first}"; the ${name} commands are ${names}`);
    }
    rest = after;
  }
  if (wantsHelp(rest)) return asked();
  const values = parseValues(spec.options, rest, sub ? `qks ${name} ${sub.name}` : `qks ${name}`);
  if (sub) {
    const foreign = Object.keys(values).filter((k) => !sub!.options.includes(k));
    if (foreign.length > 0) {
      const others = spec.subcommands!.filter((s) => s.options.includes(foreign[0]!)).map((s) => s.name);
      const where = others.map((o) => `qks ${name} ${o}`).join(', ');
      throw new UsageError(`--${foreign[0]} is not an option of qks ${name} ${sub.name}; ${where} takes it`);
    }
  }
  return { name, ...(sub ? { sub } : {}), values } as CommandLine<O>;
}

function parseValues<O extends Options>(options: O, args: string[], command: string): ValuesOf<O> {
  try {
    const { values } = parseArgs({ args, options, strict: true, allowPositionals: false });
    return values as ValuesOf<O>;
  } catch (err) {
    const e = err as Error & { code?: string };
    if (!e.code?.startsWith('ERR_PARSE_ARGS')) throw err;
    throw new UsageError(parseProblem(e, command));
  }
}

/** Node's parser messages, made short and specific. */
function parseProblem(e: Error & { code?: string }, command: string): string {
  const flag = /'(-[^' ]+)/.exec(e.message)?.[1] ?? '';
  switch (e.code) {
    case 'ERR_PARSE_ARGS_UNKNOWN_OPTION': {
      const owners = COMMANDS.filter((c) => Object.hasOwn(c.options, flag.replace(/^--/, ''))).map(
        (c) => `qks ${c.names.join('|')}`,
      );
      return `unknown option ${flag} for ${command}${owners.length ? `; ${owners.join(', ')} takes it` : ''}`;
    }
    case 'ERR_PARSE_ARGS_UNEXPECTED_POSITIONAL':
      return `unexpected argument "${/'([^']*)'/.exec(e.message)?.[1]}": ${command} takes only --options`;
    case 'ERR_PARSE_ARGS_INVALID_OPTION_VALUE':
      return /argument missing/.test(e.message) ? `${flag} needs a value` : `${flag} takes no value`;
    default:
      return e.message;
  }
}
