/**
 * Custody of key-encryption keys (KEKs): something that holds KEKs by name, never lets them out,
 * and wraps and unwraps data keys under them. The PKCS#11 backend keeps them in an HSM; the
 * in-process one (memory-custody.ts) exists so the envelope logic can be tested without a token.
 * Calls are synchronous: they happen when a data key is first made or opened, never per block.
 */
export interface KeyCustody {
  /** Names of the KEKs this custody holds. */
  listKeks(): string[];
  /** Makes a new KEK; refuses a name already taken. */
  createKek(name: string): void;
  /** Destroys a KEK: whatever is wrapped under it can no longer be opened. */
  destroyKek(name: string): void;
  /** A 32-byte data key wrapped under the KEK `kek` (RFC 3394 AES key wrap). */
  wrap(kek: string, dataKey: Buffer): Buffer;
  /** The data key in `wrapped`, in a buffer of its own for the caller to wipe. */
  unwrap(kek: string, wrapped: Buffer): Buffer;
  close(): void;
}

/** A custody operation failed: a KEK missing, a wrapped key that does not open, a token that refused. */
export class CustodyError extends Error {
  override name = 'CustodyError';
}
