import { unwatchFile, watchFile } from 'node:fs';
import { resolve } from 'node:path';
import { isDeepStrictEqual } from 'node:util';
import type { Logger } from 'pino';
import type { SaeTable } from '../domain/sae-directory.js';
import { loadConfig, type KmeConfig } from './config.js';

export interface SaeListWatch {
  /** The configuration the KME runs with, loaded from its `source_file`. */
  readonly running: KmeConfig;
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
 * changed are logged as needing a restart, and stay as they were. `reload` reads the file now.
 */
export function watchSaeList(w: SaeListWatch): { stop: () => void; reload: () => void } {
  const { running, saes, log } = w;
  const file = resolve(running.source_file!);
  // What was last reported: a change is logged once, not at every later reload.
  let reported = '';
  const listener = () => {
    let next: KmeConfig;
    try {
      next = loadConfig(file);
    } catch (err) {
      log.error({ config: file, err: (err as Error).message }, 'configuration not reloaded; the SAE list stays');
      return;
    }
    // Against what runs: a setting changed back to its running value needs no restart.
    const restart = changedSettings(running, next);
    if (restart.length > 0 && restart.join() !== reported) {
      log.warn({ config: file, settings: restart }, 'configuration changed: these settings need a restart');
    }
    reported = restart.join();
    const { added, removed, moved } = saes.replace(next.saes);
    if (added.length + removed.length + moved.length > 0) {
      log.info({ config: file, added, removed, moved }, 'SAE list reloaded');
    }
  };
  watchFile(file, { interval: w.intervalMs ?? 500, persistent: false }, listener);
  return { stop: () => unwatchFile(file, listener), reload: listener };
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
