import { badRequest } from './errors.js';
import { requireEntityId } from './ids.js';

/** Per-SAE settings an SAE may read and change (the earlier Quantum Key Server's extension). */
export const PREFERENCE_DEFAULTS = {
  /** Seconds an SAE toolkit peer waits for the other side of a key exchange. */
  key_exchange_timeout: 30,
  /** How much the KME logs about this SAE's requests. */
  log_level: 'info',
} as const;

export type Preferences = {
  -readonly [K in keyof typeof PREFERENCE_DEFAULTS]: (typeof PREFERENCE_DEFAULTS)[K] extends number ? number : string;
};

export const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

export interface PreferenceChange {
  /** Whose setting; the caller's own when the body names no `SAE_ID`. */
  readonly sae: string | undefined;
  readonly name: keyof Preferences;
  readonly value: string | number;
}

/** Validates `{"name": ..., "value": ..., "SAE_ID"?: ...}`; returns the setting to store. */
export function parsePreference(body: unknown): PreferenceChange {
  if (!isObject(body)) throw badRequest('preference must be a JSON object with name and value');
  const extra = Object.keys(body).filter((k) => k !== 'name' && k !== 'value' && k !== 'SAE_ID');
  if (extra.length > 0) throw badRequest(`unknown field in preference: ${extra.join(', ')}`);
  const { name, value } = body;
  const sae = body['SAE_ID'] === undefined ? undefined : requireEntityId(body['SAE_ID'], 'SAE_ID');
  switch (name) {
    case 'key_exchange_timeout':
      if (!Number.isSafeInteger(value) || (value as number) < 1 || (value as number) > 3600) {
        throw badRequest('key_exchange_timeout must be an integer number of seconds from 1 to 3600');
      }
      return { sae, name, value: value as number };
    case 'log_level':
      if (typeof value !== 'string' || !(LOG_LEVELS as readonly string[]).includes(value)) {
        throw badRequest(`log_level must be one of ${LOG_LEVELS.join(', ')}`);
      }
      return { sae, name, value };
    default:
      throw badRequest(`unknown preference; known: ${Object.keys(PREFERENCE_DEFAULTS).join(', ')}`);
  }
}

export function withDefaults(stored: Record<string, unknown>): Preferences {
  return { ...PREFERENCE_DEFAULTS, ...stored } as Preferences;
}
