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
  /** Slaves served by the other KME, which must hold the keys before the master gets them. */
  readonly remoteSlaves: string[];
  /** The KME of the remote slaves (a peer, or reached by relay); null when all slaves are local. */
  readonly peerKme: string | null;
}

/**
 * Decides which KME serves each slave of a request. A key goes to one other KME (over a common link,
 * or relayed through trusted nodes), so all remote slaves must sit at the same KME.
 */
export function planSlaves(dir: SaeDirectory, thisKme: string, master: string, slaves: readonly string[]): SlavePlan {
  const localSlaves: string[] = [];
  const remoteSlaves: string[] = [];
  let peerKme: string | null = null;
  for (const slave of slaves) {
    if (slave === master) throw badRequest('a slave SAE must differ from the master SAE');
    const kme = dir.kmeOf.get(slave);
    if (kme === undefined) throw badRequest(`unknown SAE ID: ${slave}`);
    if (kme === thisKme) {
      localSlaves.push(slave);
      continue;
    }
    if (peerKme !== null && kme !== peerKme) {
      throw badRequest('all slave SAEs must be served by this KME or by one other KME');
    }
    peerKme = kme;
    remoteSlaves.push(slave);
  }
  return { localSlaves, remoteSlaves, peerKme };
}

/** The caller must be an SAE of this KME. */
export function requireLocalSae(dir: SaeDirectory, thisKme: string, sae: string): void {
  if (dir.kmeOf.get(sae) !== thisKme) throw new QksError('UNAUTHORIZED', `SAE ${sae} is not served by this KME`);
}
