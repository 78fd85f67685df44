import { createCipheriv, createDecipheriv, createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import { HkdfBarrierKeys, type BarrierKeys } from './barrier-keys.js';
import { blockAad } from '../domain/material.js';
import { QksError } from '../domain/errors.js';
import type { RowIntegrity, SealedBlock } from './key-store.js';

const NONCE_BYTES = 12;
const TAG_BYTES = 16;
/** Nonces drawn from the random generator at once: one call per nonce cost more than the sealing. */
const NONCES_PER_DRAW = 256;
/**
 * Blocks sealed under one subkey: each (link, epoch of 2^16 block numbers) has its own AES key, so
 * no key seals more than about 2^16 blocks and random 96-bit nonces never come near the 2^32 bound
 * (collision chance per subkey below 2^-65). Nonces stay random rather than counted from the block
 * number: a block number sealed twice (a source replaying after a restore) must not reuse a nonce.
 */
const EPOCH_BITS = 16;
/** Subkeys kept derived: a link seals in one epoch at a time, and opens mostly recent ones. */
const SUBKEYS_KEPT = 64;

/**
 * Encryption at rest, above every store: AES-256-GCM under a subkey per link and epoch (derived
 * from the master key, or a data key wrapped in an HSM: barrier-keys.ts), with associated data naming the block's link and number; and a MAC (HMAC-SHA-256
 * under another derived key) that binds the store's rows to what they may be used for.
 */
export class Barrier implements RowIntegrity {
  readonly #keys: BarrierKeys;
  readonly #macKey: Buffer;
  readonly #subkeys = new Map<string, Buffer>();
  #nonces = Buffer.alloc(0);
  #nextNonce = 0;

  /**
   * Derives its keys from a 32-byte `masterKey` (the caller wipes it, see master-key.ts), or takes
   * them from `keys`; destroy() destroys `keys` too.
   */
  constructor(keys: Buffer | BarrierKeys) {
    this.#keys = Buffer.isBuffer(keys) ? new HkdfBarrierKeys(keys) : keys;
    this.#macKey = this.#keys.rowKey();
  }

  static sealedLength(plainLength: number): number {
    return NONCE_BYTES + plainLength + TAG_BYTES;
  }

  #subkey(linkId: string, seq: number): Buffer {
    const epoch = Math.floor(seq / 2 ** EPOCH_BITS);
    const name = `${linkId}\u0000${epoch}`;
    let key = this.#subkeys.get(name);
    if (key) return key;
    key = this.#keys.blockKey(linkId, epoch);
    if (this.#subkeys.size >= SUBKEYS_KEPT) {
      const [oldest, old] = this.#subkeys.entries().next().value!;
      old.fill(0);
      this.#subkeys.delete(oldest);
    }
    this.#subkeys.set(name, key);
    return key;
  }

  /** A fresh random nonce; each is handed out once, and every draw is a new buffer. */
  #nonce(): Buffer {
    if (this.#nextNonce + NONCE_BYTES > this.#nonces.length) {
      this.#nonces = randomBytes(NONCE_BYTES * NONCES_PER_DRAW);
      this.#nextNonce = 0;
    }
    return this.#nonces.subarray(this.#nextNonce, (this.#nextNonce += NONCE_BYTES));
  }

  /** Seals block `seq` of a link: nonce ‖ ciphertext ‖ tag. */
  sealBlock(plain: Uint8Array, linkId: string, seq: number): Buffer {
    const nonce = this.#nonce();
    const cipher = createCipheriv('aes-256-gcm', this.#subkey(linkId, seq), nonce);
    cipher.setAAD(Buffer.from(blockAad(linkId, seq)));
    // Written into one buffer (no concatenations): a link seals every block.
    const sealed = Buffer.allocUnsafe(NONCE_BYTES + plain.length + TAG_BYTES);
    nonce.copy(sealed, 0);
    cipher.update(plain).copy(sealed, NONCE_BYTES);
    cipher.final();
    cipher.getAuthTag().copy(sealed, NONCE_BYTES + plain.length);
    return sealed;
  }

  /** Opens block `seq` of a link into `into` at `offset`; nothing of the plain bytes is left elsewhere. */
  #openInto(sealed: Uint8Array, linkId: string, seq: number, into: Buffer, offset: number): number {
    const length = sealed.length - NONCE_BYTES - TAG_BYTES;
    let plain: Buffer | undefined;
    try {
      const decipher = createDecipheriv('aes-256-gcm', this.#subkey(linkId, seq), sealed.subarray(0, NONCE_BYTES));
      decipher.setAAD(Buffer.from(blockAad(linkId, seq)));
      decipher.setAuthTag(sealed.subarray(sealed.length - TAG_BYTES));
      plain = decipher.update(sealed.subarray(NONCE_BYTES, sealed.length - TAG_BYTES));
      decipher.final();
      plain.copy(into, offset);
      return length;
    } catch {
      into.fill(0, offset, offset + Math.max(length, 0));
      // A wrong master key or tampered storage; never say more than that.
      throw new QksError('KEY_DATA_ACCESS_ERROR');
    } finally {
      plain?.fill(0);
    }
  }

  /** One block's plain bytes, in a buffer of its own (not the shared pool) for the caller to wipe. */
  openBlock(sealed: Uint8Array, linkId: string, seq: number): Buffer {
    const plain = Buffer.alloc(Math.max(sealed.length - NONCE_BYTES - TAG_BYTES, 0));
    this.#openInto(sealed, linkId, seq, plain, 0);
    return plain;
  }

  /** A key from its blocks in order, cut to its size; every other copy of the plain bytes is wiped. */
  openKey(linkId: string, blocks: readonly SealedBlock[], sizeBits: number): Buffer {
    const plainBytes = blocks.reduce((n, b) => n + b.sealed.length - NONCE_BYTES - TAG_BYTES, 0);
    const joined = Buffer.alloc(Math.max(plainBytes, sizeBits / 8));
    try {
      let offset = 0;
      for (const b of blocks) offset += this.#openInto(b.sealed, linkId, b.seq, joined, offset);
      const key = Buffer.alloc(sizeBits / 8);
      joined.copy(key, 0, 0, key.length);
      return key;
    } finally {
      joined.fill(0);
    }
  }

  #mac(kind: string, fields: readonly unknown[]): Buffer {
    return createHmac('sha256', this.#macKey).update(kind).update('\u0000').update(JSON.stringify(fields)).digest();
  }

  tag(kind: string, fields: readonly unknown[]): Buffer {
    return this.#mac(kind, fields);
  }

  verify(kind: string, fields: readonly unknown[], tag: Uint8Array): boolean {
    const expected = this.#mac(kind, fields);
    return tag.length === expected.length && timingSafeEqual(expected, tag);
  }

  destroy(): void {
    this.#keys.destroy();
    this.#macKey.fill(0);
    for (const key of this.#subkeys.values()) key.fill(0);
    this.#subkeys.clear();
  }
}
