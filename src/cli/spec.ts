/**
 * What a command line accepts, as data: the parser, every help text, the README's command table and
 * docs/cli.md are all made from these, so they cannot disagree.
 */
export interface OptionSpec {
  readonly type: 'string' | 'boolean';
  readonly multiple?: boolean;
  /** The value's placeholder in help texts (`--dir DIR`). */
  readonly arg?: string;
  readonly help: string;
}

export type Options = Readonly<Record<string, OptionSpec>>;

export interface SubcommandSpec {
  readonly name: string;
  /** What follows `qks <command> <name>` in its usage line. */
  readonly args: string;
  readonly summary: string;
  /** The command's options this subcommand takes (others are refused). */
  readonly options: readonly string[];
}

export interface CommandSpec {
  /** One or more names that share the spec (`tunnel|stunnel`). */
  readonly names: readonly string[];
  /** What follows the name in the usage line and the README's table. */
  readonly args: string;
  readonly summary: string;
  /** Paragraphs shown in the command's own help, after the usage line. */
  readonly about?: string;
  readonly options: Options;
  readonly subcommands?: readonly SubcommandSpec[];
  /** The page that documents it, linked from the README's table. */
  readonly docs?: string;
}

/** The flags named in a usage line, such as `--dir` in `[--dir DIR]`. */
export const flagsIn = (text: string): string[] => [...text.matchAll(/--([a-z][a-z0-9-]*)/g)].map((m) => m[1]!);

/** What the parser gives for a command's options. */
export type ValuesOf<O extends Options> = {
  -readonly [K in keyof O]?: O[K] extends { multiple: true }
    ? string[]
    : O[K]['type'] extends 'boolean'
      ? boolean
      : string;
};
