import { badRequest } from './errors.js';
import { requireEntityId } from './ids.js';
import type { LinkCost } from './routes.js';

/**
 * Link-state routing by key availability (docs/network.md): every KME advertises its links — the
 * peer, whether it hears from it, how much of its own share of the link's material it holds — and
 * floods the adverts of the others, newest sequence number first. Paths then avoid links that are
 * down or too poor for a request, and prefer rich ones.
 */
export interface LinkAdvert {
  readonly id: string;
  readonly peer: string;
  /** The advertising KME hears from the peer (its advert arrived lately). */
  readonly up: boolean;
  /** Material the advertising KME can cut keys from on this link now (its own share), bits. */
  readonly available_bits: number;
}

export interface LinkStateAdvert {
  readonly origin: string;
  /** Higher is newer; a restarted KME starts above any number it sent before (from its clock). */
  readonly seq: number;
  readonly links: readonly LinkAdvert[];
}

const MAX_LINKS = 1024;

export function parseAdvert(body: unknown): LinkStateAdvert {
  const o = body as Record<string, unknown> | null;
  if (typeof o !== 'object' || o === null || !Array.isArray(o['links']) || o['links'].length > MAX_LINKS) {
    throw badRequest('a link-state advert needs origin, seq and links');
  }
  if (!Number.isSafeInteger(o['seq']) || (o['seq'] as number) < 0) throw badRequest('seq must be a whole number');
  return {
    origin: requireEntityId(o['origin'], 'origin'),
    seq: o['seq'] as number,
    links: o['links'].map((l: unknown): LinkAdvert => {
      const x = l as Record<string, unknown> | null;
      if (typeof x !== 'object' || x === null || typeof x['up'] !== 'boolean') throw badRequest('each link needs up');
      const bits = x['available_bits'];
      if (!Number.isSafeInteger(bits) || (bits as number) < 0) throw badRequest('available_bits must be a count');
      return {
        id: requireEntityId(x['id'], 'link id'),
        peer: requireEntityId(x['peer'], 'peer'),
        up: x['up'],
        available_bits: bits as number,
      };
    }),
  };
}

/** What one KME knows of the network's links, from the adverts it received (and its own). */
export class LinkStateDb {
  readonly #adverts = new Map<string, { advert: LinkStateAdvert; at: number }>();
  /** KMEs whose last advert aged out: down until they advertise again. */
  readonly #silent = new Set<string>();

  constructor(readonly maxAgeMs: number) {}

  /** Keeps the advert if it is newer than the one held for its origin; true if so (flood it on). */
  accept(advert: LinkStateAdvert, now: number): boolean {
    const held = this.#adverts.get(advert.origin);
    if (held && held.advert.seq >= advert.seq) return false;
    this.#adverts.set(advert.origin, { advert, at: now });
    this.#silent.delete(advert.origin);
    return true;
  }

  /** Forgets adverts older than maxAgeMs; returns the KMEs that fell silent now. */
  expire(now: number): string[] {
    const gone: string[] = [];
    for (const [origin, held] of this.#adverts) {
      if (now - held.at <= this.maxAgeMs) continue;
      this.#adverts.delete(origin);
      this.#silent.add(origin);
      gone.push(origin);
    }
    return gone;
  }

  /** Whether `kme`'s advert arrived within maxAgeMs of `now`. */
  heardFrom(kme: string, now: number): boolean {
    const held = this.#adverts.get(kme);
    return held !== undefined && now - held.at <= this.maxAgeMs;
  }

  /** What `from` last advertised it holds of its link to `peer`, in bits; undefined if unknown. */
  availableBits(from: string, peer: string): number | undefined {
    return this.#adverts.get(from)?.advert.links.find((l) => l.peer === peer)?.available_bits;
  }

  adverts(): LinkStateAdvert[] {
    return [...this.#adverts.values()].map((h) => h.advert);
  }

  /**
   * The cost of sending `neededBits` over a link from the KME `from`: 1 per hop plus the share of
   * `from`'s material on the link that the request would use (1 + needed/available), so a path
   * detours around a link about to run dry; Infinity when the link is down at either end, its
   * material is short, or `from` fell silent. A KME not heard from yet (just started) is taken as
   * one hop, so that paths exist before the first adverts arrive.
   */
  cost(neededBits: number): LinkCost {
    return (link, from) => {
      const peer = link.a === from ? link.b : link.a;
      if (this.#silent.has(from) || this.#silent.has(peer)) return Infinity;
      const mine = this.#adverts.get(from)?.advert.links.find((l) => l.id === link.id);
      const theirs = this.#adverts.get(peer)?.advert.links.find((l) => l.id === link.id);
      if (mine === undefined) return 1;
      if (!mine.up || theirs?.up === false || mine.available_bits < neededBits) return Infinity;
      return 1 + neededBits / Math.max(mine.available_bits, 1);
    };
  }
}
