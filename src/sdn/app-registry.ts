import { existsSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { AppConfig, RegisteredApp } from './node-apps.js';
import { validateAppWrite } from './node-schema.js';

/** Where a KME keeps the applications controllers registered over its 015 interface. */
export const APPS_FILE = 'sdn-applications.json';

interface FileFormat {
  readonly format: 1;
  readonly apps: RegisteredApp[];
}

/**
 * The applications (qkd_app) controllers registered at this KME, kept in its data directory so
 * that they survive a restart. Every change rewrites the whole (small) file: written beside it,
 * then renamed over it, so that a crash leaves the old file or the new one, never half of one.
 * Entries are validated when read back: a file edited by hand into something invalid stops the
 * KME's start with the reason, rather than serving what a controller never wrote.
 */
export class AppRegistry {
  readonly #file: string | undefined;
  readonly #apps = new Map<string, RegisteredApp>();

  /** `dataDir` undefined: kept in memory only (tests of the builder). */
  constructor(dataDir?: string) {
    this.#file = dataDir === undefined ? undefined : join(dataDir, APPS_FILE);
    if (this.#file && existsSync(this.#file)) {
      for (const app of parseFile(readFileSync(this.#file, 'utf8'), this.#file)) this.#apps.set(app.config.app_id, app);
    }
  }

  list(): RegisteredApp[] {
    return [...this.#apps.values()];
  }

  get(appId: string): RegisteredApp | undefined {
    return this.#apps.get(appId);
  }

  /** Adds or replaces an application; a replaced one keeps its creation time. */
  put(config: AppConfig, now: number): 'created' | 'replaced' {
    const before = this.#apps.get(config.app_id);
    const next = new Map(this.#apps).set(config.app_id, { config, createdAt: before?.createdAt ?? now });
    this.#save(next);
    return before ? 'replaced' : 'created';
  }

  delete(appId: string): boolean {
    if (!this.#apps.has(appId)) return false;
    const next = new Map(this.#apps);
    next.delete(appId);
    this.#save(next);
    return true;
  }

  /** Written first, then taken: a failed write changes nothing, on disk or here. */
  #save(next: Map<string, RegisteredApp>): void {
    if (this.#file) {
      const body: FileFormat = { format: 1, apps: [...next.values()] };
      writeFileSync(`${this.#file}.tmp`, JSON.stringify(body, null, 2) + '\n', { mode: 0o600 });
      renameSync(`${this.#file}.tmp`, this.#file);
    }
    this.#apps.clear();
    for (const [id, app] of next) this.#apps.set(id, app);
  }
}

function parseFile(text: string, file: string): RegisteredApp[] {
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    throw new Error(`${file} is not valid JSON`);
  }
  const body = parsed as Partial<FileFormat> | null;
  if (body?.format !== 1 || !Array.isArray(body.apps)) throw new Error(`${file} is not a QKS application registry`);
  return body.apps.map((app, i) => {
    const ok = app && typeof app.createdAt === 'number' && validateAppWrite(app.config);
    if (!ok) throw new Error(`${file}: entry ${i} is not a valid qkd_app`);
    return { config: app.config, createdAt: app.createdAt };
  });
}
