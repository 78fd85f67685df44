import { readJsonIfPresent, writeFileDurably } from '../config/files.js';
import { badRequest } from '../domain/errors.js';
import { requireEntityId } from '../domain/ids.js';

/**
 * Relay paths an SDN controller installed in this KME (centralized mode, docs/sdn.md): keys for a
 * target KME take the installed path instead of the one link-state routing would choose. Kept in
 * the data directory, so that they outlive a restart of the KME and keys keep flowing on them
 * while the controller is down.
 */
export interface InstalledRoute {
  /** The controller's name for it (a virtual link's ID). */
  readonly id: string;
  /** KMEs from this one to the target, both included. */
  readonly path: readonly string[];
  readonly installedAt: number;
}

const MAX_ROUTES = 4096;
const MAX_PATH = 32;

export class InstalledRoutes {
  readonly #kmeId: string;
  readonly #file: string;
  readonly #routes = new Map<string, InstalledRoute>();

  constructor(kmeId: string, file: string) {
    this.#kmeId = kmeId;
    this.#file = file;
    for (const r of readJsonIfPresent<InstalledRoute[]>(file) ?? [])
      this.#routes.set(r.id, this.#checked(r.id, r.path, r.installedAt));
  }

  list(): InstalledRoute[] {
    return [...this.#routes.values()];
  }

  get(id: string): InstalledRoute | undefined {
    return this.#routes.get(id);
  }

  /** The installed path to `target`, the newest if several lead there. */
  pathTo(target: string): readonly string[] | undefined {
    let found: InstalledRoute | undefined;
    for (const r of this.#routes.values())
      if (r.path.at(-1) === target && (!found || r.installedAt >= found.installedAt)) found = r;
    return found?.path;
  }

  /** Installs a path; false, changing nothing, when the ID is taken. Throws a 400 for a bad path. */
  install(id: string, path: readonly string[], now = Date.now()): boolean {
    const route = this.#checked(id, path, now);
    if (this.#routes.has(id)) return false;
    if (this.#routes.size >= MAX_ROUTES) throw badRequest(`at most ${MAX_ROUTES} installed routes`);
    this.#routes.set(id, route);
    this.#save();
    return true;
  }

  remove(id: string): boolean {
    if (!this.#routes.delete(id)) return false;
    this.#save();
    return true;
  }

  #checked(id: string, path: readonly string[], installedAt: number): InstalledRoute {
    const kmes = path.map((k) => requireEntityId(k, 'path entry'));
    if (kmes.length < 2 || kmes.length > MAX_PATH) throw badRequest(`a path holds 2 to ${MAX_PATH} KMEs`);
    if (kmes[0] !== this.#kmeId) throw badRequest(`a path installed in KME ${this.#kmeId} starts there`);
    if (new Set(kmes).size !== kmes.length) throw badRequest('a path passes a KME twice');
    return { id: requireEntityId(id, 'route ID'), path: kmes, installedAt };
  }

  /** A crash or power loss leaves the old file or the new one. */
  #save(): void {
    writeFileDurably(this.#file, JSON.stringify(this.list()) + '\n');
  }
}
