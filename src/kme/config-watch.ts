import { unwatchFile, watchFile } from 'node:fs';
import { isDeepStrictEqual } from 'node:util';
import type { Logger } from 'pino';
import type { SaeTable } from '../domain/sae-directory.js';
import { loadConfig, type KmeConfig } from './config.js';

export interface SaeListWatch {
  /** The configuration file the KME was started from. */
  readonly file: string;
  /** The KME's SAE list, replaced when the file's `saes` change. */
  readonly saes: SaeTable;
  readonly log: Logger;
  /** How often the file is polled (it is usually replaced by a rename, which events miss). */
  readonly intervalMs?: number;
}

/**
 * Applies changes of a running KME's configuration file to its SAE list, so that an SAE added by
 * `qks pki issue` (or removed by hand) is served or refused without a restart. A changed file is
 * checked as at start; an invalid one is logged and the previous list kept. Other settings that
 * changed are logged as needing a restart, and stay as they were. Returns a function that stops it.
 */
export function watchSaeList(w: SaeListWatch): () => void {
  const { file, saes, log } = w;
  // What the file said when last read: a change is logged once, not at every later reload.
  let seen: KmeConfig | undefined;
  try {
    seen = loadConfig(file);
  } catch {
    // The KME was started from another reading of it; every setting that differs is reported.
  }
  const listener = () => {
    let next: KmeConfig;
    try {
      next = loadConfig(file);
    } catch (err) {
      log.error({ config: file, err: (err as Error).message }, 'configuration not reloaded; the SAE list stays');
      return;
    }
    const restart = seen ? changedSettings(seen, next) : [];
    seen = next;
    if (restart.length > 0) {
      log.warn({ config: file, settings: restart }, 'configuration changed: these settings need a restart');
    }
    const { added, removed, moved } = saes.replace(next.saes);
    if (added.length + removed.length + moved.length > 0) {
      log.info({ config: file, added, removed, moved }, 'SAE list reloaded');
    }
  };
  watchFile(file, { interval: w.intervalMs ?? 500, persistent: false }, listener);
  return () => unwatchFile(file, listener);
}

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

/** The settings (dotted paths) other than `saes` whose values differ. */
function changedSettings(before: unknown, after: unknown, path = ''): string[] {
  if (!isObject(before) || !isObject(after)) return isDeepStrictEqual(before, after) ? [] : [path];
  const keys = [...new Set([...Object.keys(before), ...Object.keys(after)])];
  return keys
    .filter((k) => !(path === '' && k === 'saes'))
    .flatMap((k) => changedSettings(before[k], after[k], path ? `${path}.${k}` : k));
}
