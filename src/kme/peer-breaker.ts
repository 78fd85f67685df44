import { RequestNotSent } from './peer-stream/connection.js';

export interface PeerBreakerOptions {
  /** Resolves true when the peer answered at all (an answer or a refusal), false when it did not. */
  readonly probe: (peerKme: string) => Promise<boolean>;
  /** A failed probe is not repeated sooner than this; requests in between fail at once. */
  readonly retryAfterMs?: number;
  readonly now?: () => number;
}

interface Down {
  readonly since: number;
  lastProbeAt: number;
  probing: Promise<boolean> | undefined;
}

/**
 * Which peer KMEs are known to be down. A reservation that cannot reach the peer marks it down;
 * from then on enc_keys for it fail before any material is cut, until a probe gets an answer.
 * One probe at a time per peer, and no sooner than `retryAfterMs` after the last failed one: a
 * peer outage costs no key material, whatever the SAEs' retries (docs/kme-channel.md).
 */
export class PeerBreaker {
  readonly #opts: PeerBreakerOptions;
  readonly #down = new Map<string, Down>();

  constructor(opts: PeerBreakerOptions) {
    this.#opts = opts;
  }

  #now(): number {
    return (this.#opts.now ?? Date.now)();
  }

  isDown(peerKme: string): boolean {
    return this.#down.has(peerKme);
  }

  /** The peer did not answer (a transport failure, not a refusal). */
  failed(peerKme: string): void {
    if (this.#down.has(peerKme)) return;
    const now = this.#now();
    this.#down.set(peerKme, { since: now, lastProbeAt: now, probing: undefined });
  }

  /** The peer answered something: it is up. */
  answered(peerKme: string): void {
    this.#down.delete(peerKme);
  }

  /** The error of a request refused here because the peer is down: nothing was sent. */
  refusal(peerKme: string): RequestNotSent {
    const since = new Date(this.#down.get(peerKme)?.since ?? this.#now()).toISOString();
    return new RequestNotSent(`peer KME ${peerKme} is unreachable (down since ${since}); try again later`);
  }

  /** Returns when the peer is up or a probe found it back; otherwise throws PEER_KME_UNAVAILABLE. */
  async ensureUp(peerKme: string): Promise<void> {
    const down = this.#down.get(peerKme);
    if (!down) return;
    if (!down.probing) {
      if (this.#now() - down.lastProbeAt < (this.#opts.retryAfterMs ?? 1000)) throw this.refusal(peerKme);
      down.lastProbeAt = this.#now();
      down.probing = this.#opts.probe(peerKme).then(
        (up) => {
          down.probing = undefined;
          down.lastProbeAt = this.#now();
          if (up && this.#down.get(peerKme) === down) this.#down.delete(peerKme);
          return up;
        },
        () => {
          down.probing = undefined;
          return false;
        },
      );
    }
    if (!(await down.probing)) throw this.refusal(peerKme);
  }
}
