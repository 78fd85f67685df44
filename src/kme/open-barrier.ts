import type { Logger } from 'pino';
import type { Barrier } from '../stores/barrier.js';
import { CustodyError } from '../stores/custody/key-custody.js';
import { openCustody, openEnvelopeBarrier } from '../stores/hsm-master-key.js';
import { openBarrier } from '../stores/master-key.js';
import { ConfigError, type KmeConfig } from './config.js';
import type { Teardown } from './teardown.js';

/** master.key's barrier, or one whose data keys are wrapped in the configured HSM (re-wrapped as KEKs rotate). */
export function openConfiguredBarrier(cfg: KmeConfig, log: Logger, teardown: Teardown): Barrier {
  if (!cfg.master_key) {
    const barrier = openBarrier(cfg.data_dir);
    teardown.add(() => barrier.destroy());
    return barrier;
  }
  try {
    const hsm = openEnvelopeBarrier(openCustody(cfg.master_key), cfg.master_key.key_label, cfg.data_dir, log);
    teardown.add(() => hsm.close());
    log.info(
      { token: cfg.master_key.token_label, key_label: cfg.master_key.key_label },
      'master key: KEK in a PKCS#11 token',
    );
    hsm.rotation.start(cfg.master_key.rewrap_interval_ms);
    return hsm.barrier;
  } catch (err) {
    if (err instanceof CustodyError)
      throw new ConfigError(err.message.startsWith('master_key') ? err.message : `master_key: ${err.message}`);
    throw err;
  }
}
