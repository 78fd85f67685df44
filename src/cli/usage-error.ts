import { fileProblem } from '../config/files.js';

/** Something the user can fix (a file that is not there, a wrong value): one line, exit code 2. */
export class UserError extends Error {
  override name = 'UserError';
}

/** A mistake in how a command was called: also points to the command's help. */
export class UsageError extends UserError {
  override name = 'UsageError';
}

/** The one-line message for an error the user caused (a usage error, a file that is not there), or null. */
export function userError(err: unknown): string | null {
  if (err instanceof UserError) return err.message;
  const e = err as NodeJS.ErrnoException;
  return e?.code && e.path ? `${e.path}: ${fileProblem(e)}` : null;
}
