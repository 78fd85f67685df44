import { createCipheriv, createDecipheriv, hkdfSync, randomBytes } from 'node:crypto';
import { QksError } from '../domain/errors.js';

const NONCE_BYTES = 12;
const TAG_BYTES = 16;
/** Nonces drawn from the random generator at once: one call per nonce cost more than the sealing. */
const NONCES_PER_DRAW = 256;

/**
 * Encryption at rest, above every store: AES-256-GCM under a key derived from the master key,
 * with associated data naming where the sealed bytes belong.
 */
export class Barrier {
  readonly #key: Buffer;
  #nonces = Buffer.alloc(0);
  #nextNonce = 0;

  constructor(masterKey: Buffer) {
    if (masterKey.length !== 32) throw new TypeError('master key must be 32 bytes');
    this.#key = Buffer.from(hkdfSync('sha256', masterKey, Buffer.alloc(0), 'qks/barrier/v1', 32));
  }

  static sealedLength(plainLength: number): number {
    return NONCE_BYTES + plainLength + TAG_BYTES;
  }

  /** A fresh random nonce; each is handed out once, and every draw is a new buffer. */
  #nonce(): Buffer {
    if (this.#nextNonce + NONCE_BYTES > this.#nonces.length) {
      this.#nonces = randomBytes(NONCE_BYTES * NONCES_PER_DRAW);
      this.#nextNonce = 0;
    }
    return this.#nonces.subarray(this.#nextNonce, (this.#nextNonce += NONCE_BYTES));
  }

  seal(plain: Uint8Array, aad: string): Buffer {
    const nonce = this.#nonce();
    const cipher = createCipheriv('aes-256-gcm', this.#key, nonce);
    cipher.setAAD(Buffer.from(aad));
    // nonce ‖ ciphertext ‖ tag, written into one buffer (no concatenations): a link seals every block.
    const sealed = Buffer.allocUnsafe(NONCE_BYTES + plain.length + TAG_BYTES);
    nonce.copy(sealed, 0);
    cipher.update(plain).copy(sealed, NONCE_BYTES);
    cipher.final();
    cipher.getAuthTag().copy(sealed, NONCE_BYTES + plain.length);
    return sealed;
  }

  open(sealed: Uint8Array, aad: string): Buffer {
    try {
      const nonce = sealed.subarray(0, NONCE_BYTES);
      const tag = sealed.subarray(sealed.length - TAG_BYTES);
      const decipher = createDecipheriv('aes-256-gcm', this.#key, nonce);
      decipher.setAAD(Buffer.from(aad));
      decipher.setAuthTag(tag);
      return Buffer.concat([
        decipher.update(sealed.subarray(NONCE_BYTES, sealed.length - TAG_BYTES)),
        decipher.final(),
      ]);
    } catch {
      // A wrong master key or tampered storage; never say more than that.
      throw new QksError('KEY_DATA_ACCESS_ERROR');
    }
  }

  destroy(): void {
    this.#key.fill(0);
  }
}
