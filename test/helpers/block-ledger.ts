import type { KeyStore, SealedBlock } from '../../src/stores/key-store.js';

/**
 * Watches the key stores of a test's KMEs: every block each one consumes, as link, owner and
 * number, and by which operation. A block of a link's material is used at most once at each end,
 * and what one end consumed the other end consumes too.
 */
export class BlockLedger {
  /** kme → "link owner seq" → how many times consumed. */
  readonly consumed = new Map<string, Map<string, number>>();
  /** Keys each KME stored for its slaves (claimBlocks), in order. */
  readonly claimedKeyIds = new Map<string, string[]>();
  /** Each KME's store as wrapped. */
  readonly stores = new Map<string, KeyStore>();
  /** Runs after a KME's claimBlocks succeeded, before its answer goes (to delay it, say). */
  afterClaim: ((kme: string) => Promise<void>) | undefined;
  /** Runs before each call of a KME's store; throwing fails the call (a full disk, say). */
  beforeCall: ((kme: string, method: string) => Promise<void>) | undefined;

  #note(kme: string, link: string, owner: string, seqs: Iterable<number>): void {
    let mine = this.consumed.get(kme);
    if (!mine) this.consumed.set(kme, (mine = new Map()));
    for (const seq of seqs) {
      const id = `${link} ${owner} ${seq}`;
      mine.set(id, (mine.get(id) ?? 0) + 1);
    }
  }

  readonly wrap = (kme: string, store: KeyStore): KeyStore => {
    const seqsOf = (blocks: readonly SealedBlock[]) => blocks.map((b) => b.seq);
    const wrapped = new Proxy(store, {
      get: (target, name, receiver) => {
        const value = Reflect.get(target, name, receiver) as unknown;
        if (typeof value !== 'function') return value;
        const fn = value as (...a: unknown[]) => Promise<unknown>;
        return async (...args: unknown[]) => {
          await this.beforeCall?.(kme, String(name));
          const result = await fn.apply(target, args);
          const [link, owner] = args as [string, string];
          if (name === 'takeOwnBlocks' && result) {
            for (const r of result as Array<{ blocks: SealedBlock[] }>) this.#note(kme, link, owner, seqsOf(r.blocks));
          } else if (name === 'takeOwnPad' && result) {
            this.#note(kme, link, owner, seqsOf(result as SealedBlock[]));
          } else if (name === 'relayIn' && (result as { ok: boolean }).ok) {
            const keys = args[2] as Array<{ seqs: number[] }>;
            this.#note(kme, link, owner, [...keys.flatMap((k) => k.seqs), ...(args[3] as number[])]);
          } else if (name === 'claimBlocks' && (result as { ok: boolean }).ok) {
            const keys = args[2] as Array<{ keyId: string; seqs: number[] }>;
            this.#note(
              kme,
              link,
              owner,
              keys.flatMap((k) => k.seqs),
            );
            this.claimedKeyIds.set(kme, [...(this.claimedKeyIds.get(kme) ?? []), ...keys.map((k) => k.keyId)]);
            await this.afterClaim?.(kme);
          }
          return result;
        };
      },
    });
    this.stores.set(kme, wrapped);
    return wrapped;
  };

  /** Blocks some KME consumed more than once (must be none). */
  reused(): string[] {
    return [...this.consumed].flatMap(([kme, m]) => [...m].filter(([, n]) => n > 1).map(([id]) => `${kme}: ${id}`));
  }

  /** The blocks of `link` one KME consumed, as a sorted list. */
  of(kme: string, link: string): string[] {
    return [...(this.consumed.get(kme)?.keys() ?? [])].filter((id) => id.startsWith(`${link} `)).sort();
  }
}
