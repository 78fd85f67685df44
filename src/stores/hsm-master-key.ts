import type { Logger } from 'pino';
import { Barrier } from './barrier.js';
import { readHsmPin } from './custody/hsm-pin.js';
import { Pkcs11Custody } from './custody/pkcs11-custody.js';
import type { KeyCustody } from './custody/key-custody.js';
import { EnvelopeKeys } from './envelope-keys.js';
import { KekRotation } from './kek-rotation.js';

/** `master_key` of a KME configuration: the KEK lives in a PKCS#11 token (docs/operations.md). */
export interface HsmMasterKeyConfig {
  kind: 'pkcs11';
  /** The PKCS#11 library, e.g. /usr/lib/softhsm/libsofthsm2.so. */
  module: string;
  token_label: string;
  /** KEKs are labelled `<key_label>.<generation>`; one label per KME. */
  key_label: string;
  /** A file holding the user PIN (mode 0600); without it, QKS_HSM_PIN. */
  pin_file?: string;
  /** How often the KME looks for a newer KEK and re-wraps data keys under it. */
  rewrap_interval_ms: number;
}

/** Logs in to the configured token with the PIN from its file or the environment. */
export function openCustody(cfg: HsmMasterKeyConfig): KeyCustody {
  return new Pkcs11Custody({ module: cfg.module, tokenLabel: cfg.token_label, pin: readHsmPin(cfg.pin_file) });
}

export interface HsmBarrier {
  readonly barrier: Barrier;
  readonly keys: EnvelopeKeys;
  readonly rotation: KekRotation;
  /** Stops the rotation, wipes the keys and logs out of the token. */
  close(): Promise<void>;
}

/** The barrier of a data_dir whose data keys are wrapped under a KEK in `custody`. */
export function openEnvelopeBarrier(custody: KeyCustody, keyLabel: string, dataDir: string, log?: Logger): HsmBarrier {
  try {
    const keys = new EnvelopeKeys(custody, keyLabel, dataDir);
    const barrier = new Barrier(keys);
    const rotation = new KekRotation(keys, log);
    return {
      barrier,
      keys,
      rotation,
      close: async () => {
        await rotation.stop();
        barrier.destroy();
        custody.close();
      },
    };
  } catch (err) {
    custody.close();
    throw err;
  }
}
