/** Something the user can fix (a file that is not there, a wrong value): one line, exit code 2. */
export class UserError extends Error {
  override name = 'UserError';
}

/** A mistake in how a command was called: also points to the command's help. */
export class UsageError extends UserError {
  override name = 'UsageError';
}

const FS_PROBLEMS: Record<string, string> = {
  ENOENT: 'no such file or directory',
  EACCES: 'permission denied',
  EISDIR: 'is a directory',
  ENOTDIR: 'a part of the path is not a directory',
};

/** The one-line message for an error the user caused (a usage error, a file that is not there), or null. */
export function userError(err: unknown): string | null {
  if (err instanceof UserError) return err.message;
  const e = err as NodeJS.ErrnoException;
  if (e?.code && e.path && FS_PROBLEMS[e.code]) return `${e.path}: ${FS_PROBLEMS[e.code]}`;
  if (e?.code?.startsWith('ERR_PARSE_ARGS')) return e.message;
  return null;
}
