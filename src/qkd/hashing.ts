import { bytesToBits, wordsFor, type Bits } from './bits.js';
import { kernels } from './kernels.js';

/**
 * Two-universal hashing for the last two stages.
 *
 * Verification: a Toeplitz matrix, T[i][j] = t[i + j], applied to the key; 64 output bits, so two
 * different keys collide with probability 2^-64 over the choice of t (the link ends expand t from
 * a 32-byte public seed, `toeplitzSeed`).
 *
 * Privacy amplification: Dietzfelbinger's multiply-add-shift family (1996; Thorup, "High speed
 * hashing for integers and strings", 2015, §3.3): for an n-bit key x, w = n + ℓ − 1 and a, b
 * uniform in [0, 2^w), h(x) = ((a·x + b) mod 2^w) >> (w − ℓ) is strongly universal onto ℓ bits,
 * hence two-universal, which is what the leftover hash lemma needs. It costs one n × n-bit
 * multiplication, which GMP does (kernels.ts) by FFT: tens of times faster than a Toeplitz product
 * of the same size in JavaScript, two to three times faster than V8's BigInt (docs/qkd-link.md).
 */

/** Words of Toeplitz seed needed for an n-bit input and `outBits` outputs. */
export const toeplitzSeedWords = (n: number, outBits: number): number => wordsFor(n + outBits) + 1;

/** Toeplitz seed words from little-endian bytes (an expansion of the public seed, at least as long). */
export function toeplitzSeedOf(bytes: Uint8Array, n: number, outBits = 64): Uint32Array {
  const words = toeplitzSeedWords(n, outBits);
  return bytesToBits(bytes, words * 32);
}

/**
 * y_i = parity(t[i .. i+n) AND x) for i < outBits (at most 64), as little-endian bytes. Computed as
 * the XOR, over the set bits j of x, of the 64 seed bits from t[j] (column j of the matrix): one
 * pass over the key instead of one per output bit.
 */
export function toeplitzHash(x: Bits, n: number, seed: Uint32Array, outBits = 64): Buffer {
  if (outBits > 64 || outBits < 1) throw new RangeError('Toeplitz tags are 1 to 64 bits');
  if (seed.length < toeplitzSeedWords(n, outBits)) throw new RangeError('Toeplitz seed too short');
  const words = wordsFor(n);
  const lastMask = n & 31 ? 0xffffffff >>> (32 - (n & 31)) : 0xffffffff;
  let lo = 0;
  let hi = 0;
  for (let k = 0; k < words; k++) {
    let v = k === words - 1 ? x[k]! & lastMask : x[k]!;
    if (v === 0) continue;
    const a = seed[k]!;
    const b = seed[k + 1]!;
    const c = seed[k + 2]!;
    // Seed bits s .. s+63 of (a, b, c); `(y << 1) << (31 − s)` is y << (32 − s), and 0 when s = 0.
    while (v !== 0) {
      const low = v & -v;
      const s = 31 - Math.clz32(low);
      v ^= low;
      lo ^= (a >>> s) | ((b << 1) << (31 - s));
      hi ^= (b >>> s) | ((c << 1) << (31 - s));
    }
  }
  if (outBits < 32) lo &= (1 << outBits) - 1;
  hi = outBits <= 32 ? 0 : outBits < 64 ? hi & ((1 << (outBits - 32)) - 1) : hi;
  const out = Buffer.alloc(8);
  out.writeUInt32LE(lo >>> 0, 0);
  out.writeUInt32LE(hi >>> 0, 4);
  return out.subarray(0, (outBits + 7) >>> 3);
}

/** Bytes of the PA seeds a and b for an n-bit key and an ℓ-bit output. */
export const amplificationSeedBytes = (n: number, outBits: number): number => Math.ceil((n + outBits - 1) / 8);

/**
 * The ℓ = `outBits` bit secret key from the n-bit reconciled key, under seeds `a` and `b`
 * (each `amplificationSeedBytes` little-endian bytes; bits beyond w are ignored).
 */
export function amplify(x: Bits, n: number, a: Uint8Array, b: Uint8Array, outBits: number): Bits {
  if (!(outBits >= 1 && outBits <= n)) throw new RangeError('output length must be 1..n bits');
  const need = amplificationSeedBytes(n, outBits);
  if (a.length < need || b.length < need) throw new RangeError('privacy amplification seeds too short');
  if (x.length < wordsFor(n)) throw new RangeError(`the key holds fewer than ${n} bits`);
  return kernels().amplify(x, n, a, b, outBits);
}
