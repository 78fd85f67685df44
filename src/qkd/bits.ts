/**
 * Bit strings packed 32 to a word, bit i in word i >>> 5 at position i & 31 (least significant
 * first). Every stage of the post-processing works on these.
 */
export type Bits = Uint32Array;

export const wordsFor = (n: number): number => (n + 31) >>> 5;

export const newBits = (n: number): Bits => new Uint32Array(wordsFor(n));

export const getBit = (b: Bits, i: number): number => (b[i >>> 5]! >>> (i & 31)) & 1;

export function setBit(b: Bits, i: number, v: number): void {
  if (v) b[i >>> 5]! |= 1 << (i & 31);
  else b[i >>> 5]! &= ~(1 << (i & 31));
}

export function flipBit(b: Bits, i: number): void {
  b[i >>> 5]! ^= 1 << (i & 31);
}

export function parity32(x: number): number {
  x ^= x >>> 16;
  x ^= x >>> 8;
  x ^= x >>> 4;
  return (0x6996 >>> (x & 0xf)) & 1;
}

export function popcount32(x: number): number {
  x -= (x >>> 1) & 0x55555555;
  x = (x & 0x33333333) + ((x >>> 2) & 0x33333333);
  return (Math.imul((x + (x >>> 4)) & 0x0f0f0f0f, 0x01010101) >>> 24) & 0xff;
}

/** Parity of bits [lo, hi). */
export function rangeParity(b: Bits, lo: number, hi: number): number {
  if (hi <= lo) return 0;
  const wl = lo >>> 5;
  const wh = (hi - 1) >>> 5;
  const maskLo = (0xffffffff << (lo & 31)) >>> 0;
  const maskHi = 0xffffffff >>> (31 - ((hi - 1) & 31));
  if (wl === wh) return parity32(b[wl]! & maskLo & maskHi);
  let x = (b[wl]! & maskLo) ^ (b[wh]! & maskHi);
  for (let w = wl + 1; w < wh; w++) x ^= b[w]!;
  return parity32(x);
}

/** Number of positions < n where a and b differ. */
export function hammingDistance(a: Bits, b: Bits, n: number): number {
  let d = 0;
  const full = n >>> 5;
  for (let w = 0; w < full; w++) d += popcount32(a[w]! ^ b[w]!);
  if (n & 31) d += popcount32((a[full]! ^ b[full]!) & (0xffffffff >>> (32 - (n & 31))));
  return d;
}

/** The bits of `src` at `positions`, in that order. */
export function gather(src: Bits, positions: ArrayLike<number>): Bits {
  const out = newBits(positions.length);
  for (let i = 0; i < positions.length; i++) {
    const p = positions[i]!;
    if ((src[p >>> 5]! >>> (p & 31)) & 1) out[i >>> 5]! |= 1 << (i & 31);
  }
  return out;
}

/** Whether words sit in memory little-endian: then bit i is bit i & 7 of byte i >>> 3 already. */
export const LITTLE_ENDIAN = new Uint8Array(Uint32Array.of(1).buffer)[0] === 1;

/** Little-endian bytes of the first `n` bits (the tail of the last byte zero). */
export function bitsToBytes(b: Bits, n: number): Buffer {
  const bytes = Buffer.alloc((n + 7) >>> 3);
  if (LITTLE_ENDIAN) bytes.set(new Uint8Array(b.buffer, b.byteOffset, bytes.length));
  else for (let i = 0; i < bytes.length; i++) bytes[i] = (b[i >>> 2]! >>> ((i & 3) * 8)) & 0xff;
  const tail = n & 7;
  if (tail) bytes[bytes.length - 1]! &= (1 << tail) - 1;
  return bytes;
}

export function bytesToBits(bytes: Uint8Array, n: number): Bits {
  if (bytes.length < (n + 7) >>> 3) throw new RangeError(`${n} bits need ${(n + 7) >>> 3} bytes`);
  const b = newBits(n);
  const used = (n + 7) >>> 3;
  if (LITTLE_ENDIAN) new Uint8Array(b.buffer).set(bytes.subarray(0, used));
  else for (let i = 0; i < used; i++) b[i >>> 2]! |= bytes[i]! << ((i & 3) * 8);
  const tail = n & 31;
  if (tail) b[b.length - 1]! &= 0xffffffff >>> (32 - tail);
  return b;
}

/** Wipes key material (an array moved to another thread is empty here: nothing to wipe). */
export function wipe(...arrays: Array<Uint32Array | Uint8Array | undefined>): void {
  for (const a of arrays) if (a && a.length > 0) a.fill(0);
}
