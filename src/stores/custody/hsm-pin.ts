import { closeSync, fstatSync, openSync, readFileSync } from 'node:fs';
import { fileProblem } from '../../config/files.js';
import { CustodyError } from './key-custody.js';

/** The environment variable that holds the token's user PIN when no pin_file is set. */
export const PIN_ENV = 'QKS_HSM_PIN';

/**
 * The token's user PIN: from `pinFile` (one line; refused when group or others may read it, as
 * master.key is), else from QKS_HSM_PIN. Never from the configuration itself.
 */
export function readHsmPin(pinFile: string | undefined, env: NodeJS.ProcessEnv = process.env): string {
  if (pinFile === undefined) {
    const pin = env[PIN_ENV];
    if (!pin)
      throw new CustodyError(`master_key: no PIN; set master_key.pin_file or the ${PIN_ENV} environment variable`);
    return pin;
  }
  let fd: number;
  try {
    fd = openSync(pinFile, 'r');
  } catch (err) {
    throw new CustodyError(`master_key.pin_file ${pinFile}: ${fileProblem(err)}`);
  }
  try {
    const { mode } = fstatSync(fd);
    if (process.platform !== 'win32' && (mode & 0o077) !== 0) {
      throw new CustodyError(
        `master_key.pin_file ${pinFile} is open to group or others (mode ${(mode & 0o777).toString(8).padStart(4, '0')}); ` +
          `run \`chmod 600 ${pinFile}\``,
      );
    }
    const pin = readFileSync(fd, 'utf8').replace(/\r?\n$/, '');
    if (!pin) throw new CustodyError(`master_key.pin_file ${pinFile} is empty`);
    return pin;
  } finally {
    closeSync(fd);
  }
}
