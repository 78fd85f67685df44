import type { Logger } from 'pino';
import { badRequest } from '../domain/errors.js';
import { LinkStateDb, parseAdvert, type LinkStateAdvert } from '../domain/link-state.js';
import type { LinkPool } from './link-pool.js';
import type { PeerStreams } from './peer-stream/client.js';
import type { StreamHandler } from './peer-stream/connection.js';

export const LINK_STATE_CHANNEL = 'kme/link-state';

export interface LinkStateOptions {
  readonly kmeId: string;
  readonly pools: readonly LinkPool[];
  readonly streams: PeerStreams;
  readonly log: Logger;
  /** How often this KME advertises its links (default 2 s). */
  readonly intervalMs?: number;
  /** How long an advert counts without a newer one (default 3 intervals and a half). */
  readonly maxAgeMs?: number;
}

/**
 * Floods link-state adverts over the KME channel (docs/network.md#routing-by-key-availability):
 * each KME sends its own every interval to its peers, and passes on every advert newer than the one
 * it holds for that origin to its other peers, once. The channel authenticates each hop (mutual
 * TLS with KME certificates); an advert claiming to come from this KME is dropped.
 */
export class LinkStateService {
  readonly db: LinkStateDb;
  readonly #o: LinkStateOptions;
  /** From the clock at start: a restarted KME's adverts are newer than those it sent before. */
  #seq = Date.now();
  readonly #startedAt = Date.now();
  #timer: NodeJS.Timeout | undefined;
  #stopped = false;

  constructor(options: LinkStateOptions) {
    this.#o = options;
    this.db = new LinkStateDb(options.maxAgeMs ?? 3.5 * (options.intervalMs ?? 2000));
  }

  start(): void {
    const tick = () => {
      void this.advertise()
        .catch((err: unknown) => this.#o.log.warn({ err: (err as Error).message }, 'link-state advert failed'))
        .finally(() => {
          if (this.#stopped) return;
          this.#timer = setTimeout(tick, this.#o.intervalMs ?? 2000);
          this.#timer.unref();
        });
    };
    tick();
  }

  /** Ages out silent KMEs, and sends this KME's advert to its peers. */
  async advertise(): Promise<void> {
    const now = Date.now();
    for (const kme of this.db.expire(now))
      this.#o.log.info({ kme }, 'link state: no advert lately; its links count as down');
    const links = await Promise.all(
      this.#o.pools.map(async (p) => ({
        id: p.linkId,
        peer: p.peerKme,
        // Up while heard lately, and in the first moments after a start, before any advert could come.
        up: this.db.heardFrom(p.peerKme, now) || now - this.#startedAt < this.db.maxAgeMs,
        available_bits: (await p.ownBlocks()) * p.ends.blockBits,
      })),
    );
    this.#seq = Math.max(this.#seq + 1, now);
    const own: LinkStateAdvert = { origin: this.#o.kmeId, seq: this.#seq, links };
    this.db.accept(own, now);
    this.#flood(own, null);
  }

  #flood(advert: LinkStateAdvert, except: string | null): void {
    const payload = Buffer.from(JSON.stringify(advert));
    for (const peer of new Set(this.#o.pools.map((p) => p.peerKme))) {
      if (peer === except || this.#stopped) continue;
      // A peer that does not answer misses this advert; the next one follows an interval later.
      this.#o.streams.request(peer, LINK_STATE_CHANNEL, payload, 2000).catch(() => undefined);
    }
  }

  readonly handler: StreamHandler = (payload, peer) => {
    let advert: LinkStateAdvert;
    try {
      advert = parseAdvert(JSON.parse(payload.toString('utf8')));
    } catch (err) {
      throw err instanceof SyntaxError ? badRequest('the advert is not valid JSON') : err;
    }
    if (advert.origin !== this.#o.kmeId && this.db.accept(advert, Date.now())) this.#flood(advert, peer);
    return Buffer.from('{}');
  };

  stop(): void {
    this.#stopped = true;
    clearTimeout(this.#timer);
  }
}
