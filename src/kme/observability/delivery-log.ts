import { shortKeyId } from '../../domain/integration-report.js';

/** One answer that handed keys to an SAE: who, to or from whom, how many, how big. Never the bytes. */
export interface Delivery {
  /** ms since the epoch. */
  readonly at: number;
  readonly sae: string;
  /** `master`: enc_keys (the SAE asked for new keys); `slave`: dec_keys (it fetched keys by ID). */
  readonly role: 'master' | 'slave';
  /** The slaves (for a master) or the master (for a slave). */
  readonly peers: readonly string[];
  readonly number: number;
  readonly sizeBits: number;
  /** Shortened key IDs (first 8 characters), at most 8 of them. */
  readonly keyIds: readonly string[];
}

const IDS_SHOWN = 8;

/** The most recent deliveries of each SAE, in memory: a bounded ring per SAE. */
export class DeliveryLog {
  readonly #perSae: number;
  readonly #rings = new Map<string, Delivery[]>();

  constructor(perSae = 50) {
    this.#perSae = perSae;
  }

  record(d: Omit<Delivery, 'keyIds'> & { readonly keyIds: readonly string[] }): void {
    const entry: Delivery = { ...d, keyIds: d.keyIds.slice(0, IDS_SHOWN).map(shortKeyId) };
    let ring = this.#rings.get(d.sae);
    if (!ring) this.#rings.set(d.sae, (ring = []));
    ring.push(entry);
    if (ring.length > this.#perSae) ring.splice(0, ring.length - this.#perSae);
  }

  /** Newest first, per SAE. */
  recent(): Record<string, Delivery[]> {
    return Object.fromEntries([...this.#rings].map(([sae, ring]) => [sae, [...ring].reverse()]));
  }
}
