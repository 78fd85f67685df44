import { createCipheriv } from 'node:crypto';
import { bitsToBytes, wipe, type Bits } from '../../qkd/bits.js';
import { amplificationSeedBytes, amplify, toeplitzHash, toeplitzSeedOf, toeplitzSeedWords } from '../../qkd/hashing.js';

/*
 * A frame's two hashes as both ends run them — the verification tag and privacy amplification —
 * with their public matrices expanded from the 32-byte seeds that Alice sends.
 */

/**
 * Public seeds expanded from 32 bytes with AES-256-CTR; `nonce` (the counter block's first word)
 * keeps the expansions of different stages apart.
 */
export function expandSeed(seed: Uint8Array, bytes: number, nonce = 0): Buffer {
  const iv = Buffer.alloc(16);
  iv.writeUInt32BE(nonce, 0);
  return createCipheriv('aes-256-ctr', seed, iv).update(Buffer.alloc(bytes));
}

/** Salt of the Toeplitz matrix's expansion (privacy amplification's is 0). */
const VERIFICATION_NONCE = 0x76657269;

/** The 64-bit verification tag of an n-bit key: a Toeplitz matrix expanded from a 32-byte seed. */
export function verificationTag(key: Bits, n: number, seed: Uint8Array): Buffer {
  const matrix = toeplitzSeedOf(expandSeed(seed, 4 * toeplitzSeedWords(n, 64), VERIFICATION_NONCE), n);
  return toeplitzHash(key, n, matrix);
}

/** Privacy amplification of an n-bit reconciled key to `outBits` secret bits, as both ends run it. */
export function secretKey(key: Bits, n: number, seed: Uint8Array, outBits: number): Buffer {
  const seeds = expandSeed(seed, 2 * amplificationSeedBytes(n, outBits));
  const half = seeds.length / 2;
  const out = amplify(key, n, seeds.subarray(0, half), seeds.subarray(half), outBits);
  const bytes = bitsToBytes(out, outBits);
  wipe(out);
  return bytes;
}
