import { hkdfSync } from 'node:crypto';

/**
 * Where the barrier's keys come from: derived from master.key (HkdfBarrierKeys), or data keys kept
 * wrapped under a KEK in an HSM (envelope-keys.ts). Either way the stores and the sealed format
 * are the same.
 */
export interface BarrierKeys {
  /** The AES-256 key of one link's epoch, in a buffer of its own that the barrier wipes. */
  blockKey(linkId: string, epoch: number): Buffer;
  /** The key that MACs the store's rows, in a buffer of its own that the barrier wipes. */
  rowKey(): Buffer;
  destroy(): void;
}

/** Keys derived from the 32-byte master key of master.key, as QKS has always derived them. */
export class HkdfBarrierKeys implements BarrierKeys {
  readonly #root: Buffer;
  readonly #rows: Buffer;

  /** The caller wipes `masterKey` (see master-key.ts). */
  constructor(masterKey: Buffer) {
    if (masterKey.length !== 32) throw new TypeError('master key must be 32 bytes');
    this.#root = Buffer.from(hkdfSync('sha256', masterKey, Buffer.alloc(0), 'qks/barrier/v2', 32));
    this.#rows = Buffer.from(hkdfSync('sha256', masterKey, Buffer.alloc(0), 'qks/rows/v2', 32));
  }

  blockKey(linkId: string, epoch: number): Buffer {
    return Buffer.from(hkdfSync('sha256', this.#root, Buffer.alloc(0), `qks/block-key/${linkId}\u0000${epoch}`, 32));
  }

  rowKey(): Buffer {
    return Buffer.from(this.#rows);
  }

  destroy(): void {
    this.#root.fill(0);
    this.#rows.fill(0);
  }
}
