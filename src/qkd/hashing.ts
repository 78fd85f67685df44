import { bitsToBytes, bytesToBits, parity32, wordsFor, type Bits } from './bits.js';

/**
 * Two-universal hashing for the last two stages.
 *
 * Verification: a Toeplitz matrix, T[i][j] = t[i + j], applied to the key; 64 output bits, so two
 * different keys collide with probability 2^-64 over the choice of t.
 *
 * Privacy amplification: Dietzfelbinger's multiply-add-shift family (1996; Thorup, "High speed
 * hashing for integers and strings", 2015, §3.3): for an n-bit key x, w = n + ℓ − 1 and a, b
 * uniform in [0, 2^w), h(x) = ((a·x + b) mod 2^w) >> (w − ℓ) is strongly universal onto ℓ bits,
 * hence two-universal, which is what the leftover hash lemma needs. It costs one n × n-bit
 * multiplication, which V8's BigInt does in native code (Karatsuba/Toom/FFT): tens of times faster
 * than a Toeplitz product of the same size in JavaScript (docs/qkd-link.md gives the figures).
 */

/** Words of Toeplitz seed needed for an n-bit input and `outBits` outputs. */
export const toeplitzSeedWords = (n: number, outBits: number): number => wordsFor(n + outBits) + 1;

/** y_i = parity(t[i .. i+n) AND x) for i < outBits (at most 64), as little-endian bytes. */
export function toeplitzHash(x: Bits, n: number, seed: Uint32Array, outBits = 64): Buffer {
  if (outBits > 64 || outBits < 1) throw new RangeError('Toeplitz tags are 1 to 64 bits');
  if (seed.length < toeplitzSeedWords(n, outBits)) throw new RangeError('Toeplitz seed too short');
  const words = wordsFor(n);
  const lastMask = n & 31 ? 0xffffffff >>> (32 - (n & 31)) : 0xffffffff;
  const out = new Uint32Array(2);
  for (let i = 0; i < outBits; i++) {
    const w0 = i >>> 5;
    const s = i & 31;
    let acc = 0;
    for (let k = 0; k < words; k++) {
      const window = s === 0 ? seed[w0 + k]! : (seed[w0 + k]! >>> s) | (seed[w0 + k + 1]! << (32 - s));
      acc ^= window & (k === words - 1 ? x[k]! & lastMask : x[k]!);
    }
    out[i >>> 5]! |= parity32(acc) << (i & 31);
  }
  return Buffer.from(out.buffer, 0, (outBits + 7) >>> 3);
}

const toBigInt = (bits: Bits, n: number): bigint => {
  const bytes = bitsToBytes(bits, n).reverse();
  return bytes.length === 0 ? 0n : BigInt('0x' + bytes.toString('hex'));
};

/** Bytes of the PA seeds a and b for an n-bit key and an ℓ-bit output. */
export const amplificationSeedBytes = (n: number, outBits: number): number => Math.ceil((n + outBits - 1) / 8);

/**
 * The ℓ = `outBits` bit secret key from the n-bit reconciled key, under seeds `a` and `b`
 * (each `amplificationSeedBytes` little-endian bytes; bits beyond w are ignored).
 */
export function amplify(x: Bits, n: number, a: Uint8Array, b: Uint8Array, outBits: number): Bits {
  if (!(outBits >= 1 && outBits <= n)) throw new RangeError('output length must be 1..n bits');
  const w = n + outBits - 1;
  const need = amplificationSeedBytes(n, outBits);
  if (a.length < need || b.length < need) throw new RangeError('privacy amplification seeds too short');
  const big = (bytes: Uint8Array) => toBigInt(bytesToBits(bytes, w), w);
  const h = BigInt.asUintN(w, big(a) * toBigInt(x, n) + big(b)) >> BigInt(w - outBits);
  const hex = h.toString(16).padStart(2 * Math.ceil(outBits / 8), '0');
  return bytesToBits(Buffer.from(hex, 'hex').reverse(), outBits);
}
