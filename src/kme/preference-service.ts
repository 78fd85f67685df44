import { withDefaults, type PreferenceChange, type Preferences } from '../domain/preferences.js';
import type { Logger } from 'pino';
import type { KeyStore } from '../stores/key-store.js';

/** Per-SAE preferences, kept in the store and cached, since every request reads the log level. */
export class PreferenceService {
  readonly #store: KeyStore;
  readonly #cache = new Map<string, Preferences>();
  readonly #loggers = new Map<string, Logger>();

  constructor(store: KeyStore) {
    this.#store = store;
  }

  async get(sae: string): Promise<Preferences> {
    let prefs = this.#cache.get(sae);
    if (!prefs) {
      prefs = withDefaults(await this.#store.getPreferences(sae));
      this.#cache.set(sae, prefs);
    }
    return prefs;
  }

  /** A logger for one SAE's requests, at the SAE's log level; made once per SAE and setting. */
  async logger(parent: Logger, sae: string): Promise<Logger> {
    let log = this.#loggers.get(sae);
    if (!log) {
      log = parent.child({ sae }, { level: (await this.get(sae)).log_level });
      this.#loggers.set(sae, log);
    }
    return log;
  }

  /** Stores one validated setting; returns all of that SAE's preferences. */
  async set(sae: string, change: PreferenceChange): Promise<Preferences> {
    await this.#store.setPreference(sae, change.name, change.value);
    this.#cache.delete(sae);
    this.#loggers.delete(sae);
    return this.get(sae);
  }
}
