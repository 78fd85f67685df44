import { closeSync, fstatSync, openSync, readSync } from 'node:fs';
import { join } from 'node:path';
import { Barrier } from './barrier.js';

export const MASTER_KEY_FILE = 'master.key';
const MASTER_KEY_BYTES = 32;

/**
 * Reads the master key of `dataDir` into a buffer of its own, hands it to `use`, and wipes it
 * afterwards whatever happens. A key file that group or others may read or write is refused:
 * anyone who can read it can open every sealed block.
 */
export function withMasterKey<T>(dataDir: string, use: (masterKey: Buffer) => T): T {
  const file = join(dataDir, MASTER_KEY_FILE);
  let fd: number;
  try {
    fd = openSync(file, 'r');
  } catch {
    throw new Error(`cannot read the master key ${file}; run \`qks init\` first`);
  }
  // Room for one byte more than the key, to notice a longer file; never a pooled buffer.
  const key = Buffer.alloc(MASTER_KEY_BYTES + 1);
  try {
    const { mode, size } = fstatSync(fd);
    if (process.platform !== 'win32' && (mode & 0o077) !== 0) {
      throw new Error(
        `master key ${file} is open to group or others (mode ${(mode & 0o777).toString(8).padStart(4, '0')}); ` +
          `run \`chmod 600 ${file}\``,
      );
    }
    const read = size === MASTER_KEY_BYTES ? readSync(fd, key, 0, key.length, 0) : size;
    if (read !== MASTER_KEY_BYTES) throw new Error(`master key ${file} must hold exactly 32 bytes`);
    return use(key.subarray(0, MASTER_KEY_BYTES));
  } finally {
    key.fill(0);
    closeSync(fd);
  }
}

/** The barrier of a KME's data folder; the raw master key is wiped once its keys are derived. */
export const openBarrier = (dataDir: string): Barrier => withMasterKey(dataDir, (key) => new Barrier(key));
