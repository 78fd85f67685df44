import type { KmeClient } from '../kme-client.js';

const FALLBACK_MS = 30_000;

/**
 * How long each side waits for the other's next message: the explicit option if given, else the
 * SAE's `key_exchange_timeout` preference at its KME (seconds; set per SAE by an administrator
 * through `POST /api/v1/preferences/preference`), else 30 s if the KME cannot say.
 */
export async function exchangeTimeoutMs(explicit: number | undefined, kme: KmeClient): Promise<number> {
  if (explicit !== undefined) return explicit;
  try {
    const seconds = (await kme.preferences()).preferences.key_exchange_timeout;
    return Number.isSafeInteger(seconds) && seconds > 0 ? seconds * 1000 : FALLBACK_MS;
  } catch {
    return FALLBACK_MS;
  }
}
