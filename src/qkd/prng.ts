/**
 * Seeded pseudo-random numbers for the simulator and the protocol's public choices. Reproducible
 * by design; a real device takes these from a physical random number generator.
 */

/** A 32-bit hash of (a, b) under `key`: random access to per-pulse choices (murmur3's finaliser). */
export function mix32(a: number, b: number, key: number): number {
  // `| 0`: the sum modulo 2^32 (what imul takes) without a double for indices near 2^32.
  let h = Math.imul(a ^ key, 0x9e3779b1) ^ Math.imul(((b | 0) + 0x7f4a7c15) | 0, 0x85ebca77);
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

/** xoshiro128** (Blackman and Vigna): fast, 2^128 − 1 period. */
export class Prng {
  #a: number;
  #b: number;
  #c: number;
  #d: number;

  /** Seeded from four 32-bit words, or from the words of a byte string (at least 16 bytes). */
  constructor(seed: ArrayLike<number>) {
    const s: number[] = [0, 1, 2, 3].map((_, i) => mix32(seed[i % seed.length]! >>> 0, i, 0x2545f491));
    // xoshiro must not start from all zeros.
    if (!s.some((x) => x !== 0)) s.fill(1);
    [this.#a, this.#b, this.#c, this.#d] = s as [number, number, number, number];
  }

  static fromBytes(bytes: Uint8Array, ...salt: number[]): Prng {
    const words: number[] = [];
    for (let i = 0; i + 3 < bytes.length; i += 4) {
      words.push((bytes[i]! | (bytes[i + 1]! << 8) | (bytes[i + 2]! << 16) | (bytes[i + 3]! << 24)) >>> 0);
    }
    const mixed = [0, 1, 2, 3].map((i) =>
      words.reduce((h, w, j) => mix32(h, w ^ (salt[(i + j) % Math.max(1, salt.length)] ?? 0), i + j), i),
    );
    return new Prng(mixed);
  }

  u32(): number {
    const r = Math.imul(rotl(Math.imul(this.#b, 5), 7), 9) >>> 0;
    const t = this.#b << 9;
    this.#c ^= this.#a;
    this.#d ^= this.#b;
    this.#b ^= this.#c;
    this.#a ^= this.#d;
    this.#c ^= t;
    this.#d = rotl(this.#d, 11);
    return r;
  }

  /** Uniform in [0, 1), 53 bits. */
  float(): number {
    return ((this.u32() >>> 5) * 67108864 + (this.u32() >>> 6)) / 9007199254740992;
  }

  /** Uniform integer in [0, n), n ≤ 2^32. */
  below(n: number): number {
    return Math.floor(this.float() * n);
  }

  /** Trials until the first success of probability p, minus one (0, 1, 2, …). */
  geometric(p: number): number {
    if (p >= 1) return 0;
    if (p <= 0) return Infinity;
    return this.geometricOf(1 / Math.log1p(-p));
  }

  /** `geometric(p)` given 1 / log(1 − p), for hot loops that draw many skips of one p. */
  geometricOf(inverseLog: number): number {
    // 32 bits of uniform (never 0) are plenty for the skips the simulator draws.
    return Math.floor(Math.log((this.u32() + 0.5) / 4294967296) * inverseLog);
  }

  /** True with probability p (to 2^-32). */
  chance(p: number): boolean {
    return this.u32() < p * 4294967296;
  }

  /** n random bits, packed as Bits (32 to a word), the bits past n zero. */
  bits(n: number): Uint32Array {
    const out = this.fill(new Uint32Array((n + 31) >>> 5));
    if (n & 31) out[out.length - 1]! &= 0xffffffff >>> (32 - (n & 31));
    return out;
  }

  /** Fills `out` with uniform words. */
  fill(out: Uint32Array): Uint32Array {
    for (let i = 0; i < out.length; i++) out[i] = this.u32();
    return out;
  }
}

const rotl = (x: number, k: number) => (x << k) | (x >>> (32 - k));
