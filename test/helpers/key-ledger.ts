import { createHash } from 'node:crypto';
import { recordDeliveredKeys } from './log-leaks.js';

/** Where a key request goes: its master, the slave in the path, and any additional slaves. */
export interface Pair {
  readonly master: string;
  readonly slave: string;
  readonly extra?: readonly string[];
}

export const slavesOf = (p: Pair): string[] => [p.slave, ...(p.extra ?? [])];

/** One 200 answer to a master: key IDs and hashes only, never the bytes themselves. */
export interface Delivery {
  readonly master: string;
  readonly slaves: readonly string[];
  readonly keyIds: readonly string[];
  readonly hashes: readonly string[];
}

export interface WireKey {
  readonly key_ID: string;
  readonly key: string;
}

const sha256 = (b: Uint8Array) => createHash('sha256').update(b).digest('hex');

/** Keys are cut from 256-bit link blocks; 8-byte pieces show any reuse, even in part. */
const CHUNK = 8;

/**
 * Everything the SAEs received, checked as it arrives: a key ID is handed to a master once, no
 * two keys share any 8-byte piece of material, each slave gets exactly the master's bytes, once.
 * Violations are collected (hashes and IDs only), so a test can assert them empty at the end.
 */
export class KeyLedger {
  readonly deliveries: Delivery[] = [];
  readonly problems: string[] = [];
  readonly #byId = new Map<string, { hash: string; master: string; slavesLeft: Set<string> }>();
  readonly #chunks = new Map<string, string>();

  /** Records keys a master received; returns the delivery for its slaves to check against. */
  master(pair: Pair, keys: readonly WireKey[]): Delivery {
    recordDeliveredKeys(keys.map((k) => k.key));
    const delivery: Delivery = {
      master: pair.master,
      slaves: slavesOf(pair),
      keyIds: keys.map((k) => k.key_ID),
      hashes: keys.map((k) => this.#material(k)),
    };
    for (const [i, id] of delivery.keyIds.entries()) {
      if (this.#byId.has(id)) this.problems.push(`key ${id} delivered to a master twice`);
      else this.#byId.set(id, { hash: delivery.hashes[i]!, master: pair.master, slavesLeft: new Set(delivery.slaves) });
    }
    this.deliveries.push(delivery);
    return delivery;
  }

  /** Records keys a slave received from `master`; each must match what the master got, once. */
  slave(slave: string, master: string, keys: readonly WireKey[]): void {
    for (const k of keys) {
      const known = this.#byId.get(k.key_ID);
      const hash = sha256(Buffer.from(k.key, 'base64'));
      if (!known) this.problems.push(`slave ${slave} got key ${k.key_ID}, which no master received`);
      else if (known.master !== master) this.problems.push(`key ${k.key_ID} came with the wrong master`);
      else if (!known.slavesLeft.delete(slave)) this.problems.push(`key ${k.key_ID} delivered to ${slave} twice`);
      else if (known.hash !== hash) this.problems.push(`key ${k.key_ID}: ${slave} got other bytes than ${master}`);
    }
  }

  /** Slaves that have not fetched the key yet. */
  pendingSlaves(keyId: string): string[] {
    return [...(this.#byId.get(keyId)?.slavesLeft ?? [])];
  }

  get keyCount(): number {
    return this.#byId.size;
  }

  /** Hashes the key and each 8-byte piece of it; a piece seen before means material was reused. */
  #material(k: WireKey): string {
    const bytes = Buffer.from(k.key, 'base64');
    for (let at = 0; at + CHUNK <= bytes.length; at += CHUNK) {
      const piece = sha256(bytes.subarray(at, at + CHUNK));
      const other = this.#chunks.get(piece);
      if (other !== undefined && other !== k.key_ID) {
        this.problems.push(`keys ${other} and ${k.key_ID} share material`);
      }
      this.#chunks.set(piece, k.key_ID);
    }
    const hash = sha256(bytes);
    bytes.fill(0);
    return hash;
  }
}
