import { unreadable } from '../config/files.js';
import { UserError } from './usage-error.js';

/** A file a command uses, and what named it: `--ca`, or the manifest's entry. */
export interface NamedFile {
  readonly what: string;
  readonly path: string | undefined;
}

/**
 * Checks before use that each named file can be read, so that a wrong path is refused in one line
 * naming the flag (or manifest entry) that gave it, not as a bare ENOENT from deep in a TLS set-up.
 */
export function checkReadable(files: readonly NamedFile[]): void {
  for (const { what, path } of files) {
    if (path === undefined) continue;
    const why = unreadable(path);
    if (why) throw new UserError(`${what} ${path}: ${why}`);
  }
}

/** A manifest's files for one entity: `--manifest FILE: sae-a1's certificate`. */
export const fromManifest = (named: string, owner: string, files: { cert: string; key: string; ca?: string }) => [
  { what: `${named}: the CA`, path: files.ca },
  { what: `${named}: ${owner}'s certificate`, path: files.cert },
  { what: `${named}: ${owner}'s key`, path: files.key },
];
