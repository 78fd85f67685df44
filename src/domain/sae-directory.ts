import { badRequest, QksError } from './errors.js';

/** Where each SAE is served: the KME that holds its keys. The same table is configured at every KME. */
export interface SaeDirectory {
  readonly kmeOf: ReadonlyMap<string, string>;
}

/** What one replacement of the SAE list changed: IDs added, removed, and served elsewhere now. */
export interface SaeChanges {
  readonly added: string[];
  readonly removed: string[];
  readonly moved: string[];
}

/**
 * A running KME's SAE list (`saes` in its configuration): replaced whole when the file changes, so
 * every reader sees either the old list or the new one.
 */
export class SaeTable implements SaeDirectory {
  #kmeOf: ReadonlyMap<string, string>;

  constructor(saes: ReadonlyArray<{ id: string; kme: string }>) {
    this.#kmeOf = new Map(saes.map((s) => [s.id, s.kme]));
  }

  get kmeOf(): ReadonlyMap<string, string> {
    return this.#kmeOf;
  }

  /** The SAEs the given KME serves, in the list's order. */
  servedBy(kme: string): string[] {
    return [...this.#kmeOf].filter(([, k]) => k === kme).map(([id]) => id);
  }

  replace(saes: ReadonlyArray<{ id: string; kme: string }>): SaeChanges {
    const before = this.#kmeOf;
    const after = new Map(saes.map((s) => [s.id, s.kme]));
    this.#kmeOf = after;
    return {
      added: [...after.keys()].filter((id) => !before.has(id)),
      removed: [...before.keys()].filter((id) => !after.has(id)),
      moved: [...after].filter(([id, kme]) => before.has(id) && before.get(id) !== kme).map(([id]) => id),
    };
  }
}

export interface SlavePlan {
  /** Slaves served by this KME. */
  readonly localSlaves: string[];
  /** Slaves served by other KMEs, which must hold the keys before the master gets them. */
  readonly remoteSlaves: string[];
  /** The KME of the remote slaves when there is exactly one (a peer, or reached by relay); else null. */
  readonly peerKme: string | null;
  /** Remote slaves by the KME that serves them: several KMEs make a multicast across sites. */
  readonly byKme: ReadonlyMap<string, readonly string[]>;
}

/** Decides which KME serves each slave of a request: this one, or others (over links, or relayed). */
export function planSlaves(dir: SaeDirectory, thisKme: string, master: string, slaves: readonly string[]): SlavePlan {
  const localSlaves: string[] = [];
  const remoteSlaves: string[] = [];
  const byKme = new Map<string, string[]>();
  for (const slave of slaves) {
    if (slave === master) throw badRequest('a slave SAE must differ from the master SAE');
    const kme = dir.kmeOf.get(slave);
    if (kme === undefined) throw badRequest(`unknown SAE ID: ${slave}`);
    if (kme === thisKme) {
      localSlaves.push(slave);
      continue;
    }
    remoteSlaves.push(slave);
    byKme.set(kme, [...(byKme.get(kme) ?? []), slave]);
  }
  const peerKme = byKme.size === 1 ? [...byKme.keys()][0]! : null;
  return { localSlaves, remoteSlaves, peerKme, byKme };
}

/** The caller must be an SAE of this KME. */
export function requireLocalSae(dir: SaeDirectory, thisKme: string, sae: string): void {
  if (dir.kmeOf.get(sae) !== thisKme) throw new QksError('UNAUTHORIZED', `SAE ${sae} is not served by this KME`);
}
