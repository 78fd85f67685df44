/**
 * Remembers key IDs already offered, so a replayed or repeated offer is refused before the KME is
 * asked. Bounded: the oldest IDs are forgotten first (the KME still delivers each key only once).
 */
export class ReplayGuard {
  readonly #seen = new Set<string>();
  readonly #limit: number;

  constructor(limit = 100_000) {
    this.#limit = limit;
  }

  /** Records the IDs; false, recording nothing, if any was seen before. */
  claim(keyIds: readonly string[]): boolean {
    if (keyIds.some((id) => this.#seen.has(id))) return false;
    for (const id of keyIds) this.#seen.add(id);
    for (const id of this.#seen) {
      if (this.#seen.size <= this.#limit) break;
      this.#seen.delete(id);
    }
    return true;
  }
}
