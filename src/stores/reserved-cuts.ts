/**
 * The cuts of reserved keys a store made in this process, per share of a link, oldest first: what
 * lets the blocks of reservations that never reached the peer go back to the pool in any order,
 * without ever putting a block back below one that was consumed after it.
 *
 * A share's consumed-block mark only rises as cuts take its oldest blocks, so a cut may go back only
 * while it is the share's newest consumption (the mark is its highest block); the mark then returns
 * to what it was before the cut, and the cut below may follow. A cut asked back while a newer one is
 * still out waits for it; once a newer one is consumed for good (delivered or burned), or anything
 * else moved the mark, the waiting cut is burned instead: still without a cancel, since the peer
 * never heard of it. A process that dies meanwhile burns every reserved key at its restart.
 */
export interface Cut {
  readonly keyIds: string[];
  /** The share's mark before the cut, and the cut's highest block number. */
  readonly markBefore: number;
  readonly max: number;
  returning: boolean;
}

/** What a store does now: cuts to put back (in this order) and to burn, and the share's new mark. */
export interface ReturnPlan {
  readonly back: Cut[];
  readonly burn: Cut[];
  readonly mark: number;
}

export class ReservedCuts {
  readonly #shares = new Map<string, Cut[]>();
  readonly #cutOf = new Map<string, { share: string; cut: Cut }>();

  /** `returning`: a cut asked back already, still waiting (when loading cuts kept elsewhere). */
  add(share: string, keyIds: readonly string[], markBefore: number, max: number, returning = false): void {
    const cut: Cut = { keyIds: [...keyIds], markBefore, max, returning };
    let cuts = this.#shares.get(share);
    if (!cuts) this.#shares.set(share, (cuts = []));
    cuts.push(cut);
    for (const id of keyIds) this.#cutOf.set(id, { share, cut });
  }

  /** Keys whose reservation ended otherwise (delivered or burned): their whole cut stays consumed. */
  settle(keyIds: readonly string[], markOf: (share: string) => number): Map<string, ReturnPlan> {
    const touched = new Set<string>();
    for (const id of keyIds) {
      const entry = this.#cutOf.get(id);
      if (!entry) continue;
      this.#forget(entry.share, entry.cut);
      touched.add(entry.share);
    }
    return this.#drainAll(touched, markOf);
  }

  /**
   * Keys whose reservation never left. Returns the plans of the shares touched; keys this process
   * did not cut (none, but for a store's misuse) are left to the caller.
   */
  return(keyIds: readonly string[], markOf: (share: string) => number): Map<string, ReturnPlan> {
    const touched = new Set<string>();
    for (const id of keyIds) {
      const entry = this.#cutOf.get(id);
      if (!entry) continue;
      entry.cut.returning = true;
      touched.add(entry.share);
    }
    return this.#drainAll(touched, markOf);
  }

  has(keyId: string): boolean {
    return this.#cutOf.has(keyId);
  }

  clear(): void {
    this.#shares.clear();
    this.#cutOf.clear();
  }

  #drainAll(shares: Set<string>, markOf: (share: string) => number): Map<string, ReturnPlan> {
    const plans = new Map<string, ReturnPlan>();
    for (const share of shares) {
      const cuts = this.#shares.get(share) ?? [];
      const back: Cut[] = [];
      const burn: Cut[] = [];
      let mark = markOf(share);
      while (cuts.length > 0 && cuts.at(-1)!.returning) {
        const top = cuts.at(-1)!;
        this.#forget(share, top);
        if (mark === top.max) {
          back.push(top);
          mark = top.markBefore;
        } else burn.push(top);
      }
      if (back.length > 0 || burn.length > 0) plans.set(share, { back, burn, mark });
    }
    return plans;
  }

  #forget(share: string, cut: Cut): void {
    const cuts = this.#shares.get(share);
    const at = cuts?.indexOf(cut) ?? -1;
    if (at >= 0) cuts!.splice(at, 1);
    if (cuts?.length === 0) this.#shares.delete(share);
    for (const id of cut.keyIds) this.#cutOf.delete(id);
  }
}
