import { randomBytes } from 'node:crypto';
import {
  closeSync,
  existsSync,
  fstatSync,
  mkdirSync,
  openSync,
  readFileSync,
  renameSync,
  writeFileSync,
} from 'node:fs';
import { dirname, resolve } from 'node:path';

const WORDS: Record<string, string> = {
  ENOENT: 'no such file',
  EACCES: 'permission denied',
  EPERM: 'permission denied',
  EISDIR: 'a directory, not a file',
  ENOTDIR: 'a folder on the way is a file',
  ELOOP: 'too many symbolic links',
};

/** A file system error in a few words: `no such file`, `permission denied`. */
export function fileProblem(err: unknown): string {
  const code = (err as NodeJS.ErrnoException).code;
  return (code && WORDS[code]) ?? (err as Error).message;
}

/** Why a file named in a configuration cannot be read, or undefined if it can. */
export function unreadable(path: string): string | undefined {
  let fd: number;
  try {
    fd = openSync(path, 'r');
  } catch (err) {
    return fileProblem(err);
  }
  try {
    return fstatSync(fd).isDirectory() ? WORDS['EISDIR'] : undefined;
  } finally {
    closeSync(fd);
  }
}

/** JSON.parse's complaint, with the line and column it stopped at. */
export function jsonProblem(err: Error, text: string): string {
  const at = /at position (\d+)/.exec(err.message);
  if (!at || /line \d+/.test(err.message)) return err.message;
  const before = text.slice(0, Number(at[1]));
  const line = before.split('\n').length;
  const column = before.length - before.lastIndexOf('\n');
  return `${err.message.replace(/ in JSON at position \d+/, '')} at line ${line}, column ${column}`;
}

/**
 * Written beside the file under a name of its own, then renamed over it: a reader (a KME polling its
 * configuration, a script waiting for a manifest) sees the old file or the new, never half of one,
 * and two writers never share the temporary file.
 */
export function writeFileAtomic(file: string, text: string, mode = 0o644, durable = false): void {
  const tmp = `${file}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`;
  writeFileSync(tmp, text, { mode, flush: durable });
  renameSync(tmp, file);
}

/** A JSON file's value, or undefined when there is no such file (state not written yet). */
export function readJsonIfPresent<T>(file: string): T | undefined {
  try {
    return JSON.parse(readFileSync(file, 'utf8')) as T;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  }
}

/** As writeFileAtomic, and on disk before the rename: state that must survive a power loss. */
export const writeFileDurably = (file: string, text: string) => writeFileAtomic(file, text, 0o600, true);

/**
 * Creates `dir` and any missing parents, one level at a time. Node's own recursive mkdir never
 * returns under a file system that refuses new entries (it loops on /proc): this fails instead,
 * naming the first level it could not make.
 */
export function makeDirs(dir: string): void {
  const missing: string[] = [];
  for (let d = resolve(dir); !existsSync(d); d = dirname(d)) missing.unshift(d);
  for (const d of missing) {
    try {
      mkdirSync(d);
    } catch (err) {
      throw new Error(`cannot create ${d} (${fileProblem(err)})`, { cause: err });
    }
  }
}
