import { createHmac, randomBytes } from 'node:crypto';

/**
 * The randomness of a link end. Frame numbers restart at 0 on every start, so nothing may depend on
 * (seed file, frame) alone: each start draws a fresh run secret, HMAC-SHA256(seed file, 32 random
 * bytes), and every seed of the run comes from it by HMAC-SHA256 with its purpose and frame as
 * input. A restarted link (after a crash too) thus never makes the same key material again, and
 * one published seed (sampling, Cascade's shuffles) reveals nothing of another (the verification
 * tag's, privacy amplification's): each is a separate PRF output.
 */
export class RunSecrets {
  readonly #secret: Buffer;

  constructor(deviceSeed: Uint8Array) {
    const nonce = randomBytes(32);
    this.#secret = createHmac('sha256', deviceSeed).update('qks/qkd/run\0').update(nonce).digest();
    nonce.fill(0);
  }

  /** The seed of the physics simulator at this end (transmitter or receiver), for this run. */
  device(role: 'transmitter' | 'receiver'): Buffer {
    return this.#derive(`device/${role}`);
  }

  /** A frame's 32-byte seed for one purpose. */
  frame(purpose: FramePurpose, frame: number): Buffer {
    return this.#derive(`frame/${purpose}/${frame}`);
  }

  /** Wipes the run secret (an end that needs no more of its seeds). */
  wipe(): void {
    this.#secret.fill(0);
  }

  #derive(label: string): Buffer {
    return createHmac('sha256', this.#secret).update(`qks/qkd/${label}`).digest();
  }
}

/** What a frame's seeds are for: each its own, so that publishing one tells nothing of the others. */
export type FramePurpose = 'sampling' | 'cascade' | 'verification' | 'amplification';
