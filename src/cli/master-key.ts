import { ConfigError, loadConfig } from '../kme/config.js';
import { DataDirInUse, lockDataDir } from '../kme/data-dir-lock.js';
import { CustodyError } from '../stores/custody/key-custody.js';
import { createNextKek, currentKek, readCensus } from '../stores/envelope-keys.js';
import { openCustody, openEnvelopeBarrier } from '../stores/hsm-master-key.js';
import type { MASTER_KEY } from './commands.js';
import type { CommandLine } from './parse.js';
import { UsageError } from './usage-error.js';

const print = (x: unknown) => process.stdout.write(JSON.stringify(x, null, 2) + '\n');

export async function masterKeyCommand({ sub, values }: CommandLine<typeof MASTER_KEY.options>): Promise<number> {
  if (!values.config) throw new UsageError('--config FILE is required');
  const cfg = loadConfig(values.config);
  const hsm = cfg.master_key;
  if (!hsm) {
    throw new ConfigError(
      `${values.config} has no master_key: its master key is ${cfg.data_dir}/master.key, which qks master-key does not rotate`,
    );
  }
  try {
    if (sub!.name === 'status') {
      const custody = openCustody(hsm);
      try {
        const label = `${hsm.key_label}.`;
        print({
          token: hsm.token_label,
          current: currentKek(custody, hsm.key_label) ?? null,
          keks_in_token: custody.listKeks().filter((k) => k.startsWith(label)),
          data_keys_per_kek: readCensus(cfg.data_dir),
        });
      } finally {
        custody.close();
      }
      return 0;
    }
    return await rotate(cfg.kme_id, cfg.data_dir, hsm);
  } catch (err) {
    if (err instanceof CustodyError) throw new ConfigError(`master_key: ${err.message}`);
    throw err;
  }
}

/**
 * Makes the next KEK, current at once. A running KME finds it the next time it makes a data key or
 * sweeps (rewrap_interval_ms) and re-wraps in the background; with the KME stopped, this command
 * re-wraps everything itself, holding the data_dir so no KME starts meanwhile.
 */
async function rotate(
  kmeId: string,
  dataDir: string,
  hsm: NonNullable<ReturnType<typeof loadConfig>['master_key']>,
): Promise<number> {
  const custody = openCustody(hsm);
  let created: string;
  try {
    created = createNextKek(custody, hsm.key_label);
  } finally {
    custody.close();
  }
  let lock;
  try {
    lock = await lockDataDir(dataDir, kmeId);
  } catch (err) {
    if (!(err instanceof DataDirInUse)) throw err;
    print({
      created,
      rewrapping: `by the running KME (pid ${err.owner.pid}) within ${hsm.rewrap_interval_ms} ms; qks master-key status shows progress`,
    });
    return 0;
  }
  try {
    const envelope = openEnvelopeBarrier(openCustody(hsm), hsm.key_label, dataDir);
    try {
      const { rewrapped, retired, left } = await envelope.rotation.sweep();
      print({ created, rewrapped, destroyed: retired, left });
    } finally {
      await envelope.close();
    }
  } finally {
    lock.release();
  }
  return 0;
}
