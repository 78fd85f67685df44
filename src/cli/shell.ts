import { existsSync, realpathSync } from 'node:fs';
import { delimiter, dirname, join, relative, resolve } from 'node:path';

/** A word the shell (sh, bash, zsh) reads back unchanged. */
export const shellQuote = (word: string): string =>
  /^[\w@%+=:,./-]+$/.test(word) ? word : `'${word.replaceAll("'", `'\\''`)}'`;

/**
 * How a user of this shell runs this qks: `qks` when it is on the PATH (npm link), `npx qks` inside
 * the checkout, or `node <path>` elsewhere.
 */
export function qksInvocation(script = process.argv[1]): string {
  if (!script) return 'qks';
  const bin = realpathSync(script);
  for (const dir of (process.env['PATH'] ?? '').split(delimiter)) {
    const candidate = join(dir, 'qks');
    if (dir && existsSync(candidate) && realpathSync(candidate) === bin) return 'qks';
  }
  const root = resolve(dirname(bin), '..');
  const inside = relative(root, process.cwd());
  if (!inside.startsWith('..') && existsSync(join(root, 'package.json'))) return 'npx qks';
  return `node ${shellQuote(bin)}`;
}
