import { existsSync, realpathSync } from 'node:fs';
import { delimiter, join } from 'node:path';

/** A word the shell (sh, bash, zsh) reads back unchanged. */
export const shellQuote = (word: string): string =>
  /^[\w@%+=:,./-]+$/.test(word) ? word : `'${word.replaceAll("'", `'\\''`)}'`;

/**
 * How a user of this shell runs this qks: `qks` when it is on the PATH (npm link), otherwise
 * `node <path>`, which works from any directory (`npx qks` works only inside the checkout).
 */
export function qksInvocation(script = process.argv[1]): string {
  if (!script) return 'qks';
  const bin = realpathSync(script);
  for (const dir of (process.env['PATH'] ?? '').split(delimiter)) {
    const candidate = join(dir, 'qks');
    if (dir && existsSync(candidate) && realpathSync(candidate) === bin) return 'qks';
  }
  return `node ${shellQuote(bin)}`;
}
