import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';
import { CustodyError, type KeyCustody } from './key-custody.js';

// RFC 3394 with its default IV, as the token's CKM_AES_KEY_WRAP: both backends write the same bytes.
const WRAP_IV = Buffer.from('A6A6A6A6A6A6A6A6', 'hex');

/**
 * KEKs in this process's memory: for tests of the envelope logic only. A KEK here is as safe as the
 * process, which is what an HSM is meant to avoid.
 */
export class MemoryCustody implements KeyCustody {
  readonly #keks = new Map<string, Buffer>();

  listKeks(): string[] {
    return [...this.#keks.keys()];
  }

  createKek(name: string): void {
    if (this.#keks.has(name)) throw new CustodyError(`a KEK named ${name} already exists`);
    this.#keks.set(name, randomBytes(32));
  }

  destroyKek(name: string): void {
    this.#kek(name).fill(0);
    this.#keks.delete(name);
  }

  wrap(kek: string, dataKey: Buffer): Buffer {
    if (dataKey.length !== 32) throw new TypeError('a data key is 32 bytes');
    const cipher = createCipheriv('id-aes256-wrap', this.#kek(kek), WRAP_IV);
    return Buffer.concat([cipher.update(dataKey), cipher.final()]);
  }

  unwrap(kek: string, wrapped: Buffer): Buffer {
    const key = this.#kek(kek);
    try {
      const decipher = createDecipheriv('id-aes256-wrap', key, WRAP_IV);
      const plain = decipher.update(wrapped);
      const out = Buffer.alloc(plain.length);
      plain.copy(out);
      plain.fill(0);
      decipher.final();
      return out;
    } catch {
      throw new CustodyError(`a data key does not open under KEK ${kek}`);
    }
  }

  close(): void {
    for (const key of this.#keks.values()) key.fill(0);
    this.#keks.clear();
  }

  #kek(name: string): Buffer {
    const key = this.#keks.get(name);
    if (!key) throw new CustodyError(`no KEK named ${name}`);
    return key;
  }
}
