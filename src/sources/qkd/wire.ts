import { badRequest } from '../../domain/errors.js';
import { bitsToBytes, bytesToBits, LITTLE_ENDIAN, newBits, type Bits } from '../../qkd/bits.js';
import { GapError, kernels } from '../../qkd/kernels.js';

/**
 * Encodings of the post-processing messages' fields and their checks. Bit arrays are raw bytes
 * (the message body is binary, envelope.ts); whatever the peer sends is validated before use,
 * and a malformed message is refused with a reason.
 */

export const QKD_OPS = ['fibre', 'detections', 'sifting', 'cascade', 'verify', 'amplify', 'commit', 'discard'] as const;
export type QkdOp = (typeof QKD_OPS)[number];

const view = (a: Uint8Array | Uint32Array) => Buffer.from(a.buffer, a.byteOffset, a.byteLength);

/** A byte field of a received message (every caller checks the length it needs). */
function bytesOf(value: unknown, what: string): Buffer {
  if (!(value instanceof Uint8Array)) throw badRequest(`${what} must be a byte field`);
  return view(value);
}

export function int(value: unknown, what: string, min = 0, max = Number.MAX_SAFE_INTEGER): number {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < min || value > max) {
    throw badRequest(`${what} must be an integer in ${min}..${max}`);
  }
  return value;
}

export function num(value: unknown, what: string, min: number, max: number): number {
  if (typeof value !== 'number' || !(value >= min && value <= max))
    throw badRequest(`${what} must be in ${min}..${max}`);
  return value;
}

export function obj(value: unknown, what = 'message'): Record<string, unknown> {
  if (typeof value !== 'object' || value === null || Array.isArray(value))
    throw badRequest(`${what} must be an object`);
  return value as Record<string, unknown>;
}

export const encodeBits = (bits: Bits, n: number): Buffer => bitsToBytes(bits, n);

export function decodeBits(value: unknown, n: number, what: string): Bits {
  const bytes = bytesOf(value, what);
  if (bytes.length !== (n + 7) >>> 3) throw badRequest(`${what} must hold ${n} bits`);
  return bytesToBits(bytes, n);
}

/** Words as little-endian bytes (a copy: the caller may wipe or reuse its array). */
export function encodeU32(words: Uint32Array): Buffer {
  if (LITTLE_ENDIAN) return Buffer.from(view(words));
  const out = Buffer.alloc(words.length * 4);
  for (let i = 0; i < words.length; i++) out.writeUInt32LE(words[i]!, 4 * i);
  return out;
}

export function decodeU32(value: unknown, what: string, maxWords: number): Uint32Array {
  const bytes = bytesOf(value, what);
  if (bytes.length % 4 !== 0 || bytes.length / 4 > maxWords) throw badRequest(`${what} has a wrong length`);
  const out = new Uint32Array(bytes.length / 4);
  if (LITTLE_ENDIAN) new Uint8Array(out.buffer).set(bytes);
  else for (let i = 0; i < out.length; i++) out[i] = bytes.readUInt32LE(4 * i);
  return out;
}

export const encodeBytes = (bytes: Uint8Array): Buffer => Buffer.from(bytes);

export function decodeBytes(value: unknown, what: string, length: number): Buffer {
  const bytes = bytesOf(value, what);
  if (bytes.length !== length) throw badRequest(`${what} must hold ${length} bytes`);
  return bytes;
}

/** Two-bit values (polarisation states, intensity classes), four to a byte. */
export function encodeCrumbs(values: Uint8Array): Buffer {
  const out = Buffer.alloc((values.length + 3) >>> 2);
  const full = values.length >>> 2;
  for (let i = 0, j = 0; i < full; i++, j += 4) {
    out[i] = (values[j]! & 3) | ((values[j + 1]! & 3) << 2) | ((values[j + 2]! & 3) << 4) | ((values[j + 3]! & 3) << 6);
  }
  for (let j = full * 4; j < values.length; j++) out[full]! |= (values[j]! & 3) << ((j & 3) * 2);
  return out;
}

export function decodeCrumbs(value: unknown, count: number, what: string, max: 2 | 3 = 3): Uint8Array {
  const bytes = bytesOf(value, what);
  if (bytes.length !== (count + 3) >>> 2) throw badRequest(`${what} must hold ${count} values`);
  const out = new Uint8Array(count);
  let top = 0;
  for (let i = 0, j = 0; i < bytes.length; i++, j += 4) {
    const byte = bytes[i]!;
    // A value above max is 3 (max is 2 or 3): both bits of some crumb set.
    top |= byte & (byte >>> 1) & 0x55;
    out[j] = byte & 3;
    if (j + 3 < count) {
      out[j + 1] = (byte >>> 2) & 3;
      out[j + 2] = (byte >>> 4) & 3;
      out[j + 3] = byte >>> 6;
    } else for (let k = 1; j + k < count; k++) out[j + k] = (byte >>> (2 * k)) & 3;
  }
  if (max < 3 && top !== 0) throw badRequest(`${what} holds a value above ${max}`);
  return out;
}

/**
 * Intensity classes of the kept clicks (decoy 1, vacuum 2) from their masks, as two-bit values four
 * to a byte (`decodeCrumbs`' layout).
 */
export function encodeClasses(decoys: Bits, vacuums: Bits, count: number): Buffer {
  const out = Buffer.alloc((count + 3) >>> 2);
  for (let i = 0; i < out.length; i++) {
    const shift = (i & 7) * 4;
    out[i] = SPREAD4[(decoys[i >>> 3]! >>> shift) & 15]! | (SPREAD4[(vacuums[i >>> 3]! >>> shift) & 15]! << 1);
  }
  return out;
}

/**
 * The signal pulses (class 0) among `count` two-bit classes, as a bit string; refuses values
 * above 2 and padding that is not zero.
 */
export function decodeSignalMask(value: unknown, count: number, what: string): Bits {
  const bytes = bytesOf(value, what);
  if (bytes.length !== (count + 3) >>> 2) throw badRequest(`${what} must hold ${count} values`);
  const out = newBits(count);
  let top = 0;
  for (let w = 0, i = 0; i < bytes.length; w++) {
    const end = Math.min(bytes.length, i + 8);
    let word = 0;
    for (let shift = 0; i < end; i++, shift += 4) {
      const byte = bytes[i]!;
      top |= byte & (byte >>> 1);
      word |= ZEROS4[byte]! << shift;
    }
    out[w] = word;
  }
  if (top & 0x55) throw badRequest(`${what} holds a value above 2`);
  if (count & 3 && bytes[bytes.length - 1]! >>> (2 * (count & 3)) !== 0) {
    throw badRequest(`${what} has padding that is not zero`);
  }
  if (count & 31) out[out.length - 1]! &= 0xffffffff >>> (32 - (count & 31));
  return out;
}

/** SPREAD4[x]: the four bits of x at the even positions of a byte. */
const SPREAD4 = Uint8Array.from({ length: 16 }, (_, x) => (x & 1) | ((x & 2) << 1) | ((x & 4) << 2) | ((x & 8) << 3));
/** ZEROS4[byte]: which of its four two-bit values are 0. */
const ZEROS4 = Uint8Array.from({ length: 256 }, (_, b) => {
  let z = 0;
  for (let k = 0; k < 4; k++) if (((b >>> (2 * k)) & 3) === 0) z |= 1 << k;
  return z;
});

/**
 * Increasing pulse indices as gaps (index − previous − 1) in u16 LE; a gap of 0xffff or more is
 * 0xffff then the gap as u32 LE (two u16, low first). About 2 bytes per click at typical click
 * rates. Both directions are C kernels (kernels.ts): millions of clicks per frame.
 */
export function encodeIndices(indices: Uint32Array): Buffer {
  const code = kernels().encodeGaps(indices);
  return Buffer.from(code.buffer, code.byteOffset, code.length);
}

/** The `count` indices, into `out` when given (exactly `count` long). */
export function decodeIndices(
  value: unknown,
  count: number,
  below: number,
  what: string,
  out = new Uint32Array(count),
): Uint32Array {
  const bytes = bytesOf(value, what);
  if (out.length !== count) throw new RangeError('decodeIndices: out must hold count indices');
  switch (kernels().decodeGaps(bytes, count, below, out)) {
    case GapError.None:
      return out;
    case GapError.Outside:
      throw badRequest(`${what} names a pulse outside the frame`);
    case GapError.Trailing:
      throw badRequest(`${what} has trailing bytes`);
    default:
      throw badRequest(`${what} is truncated or malformed`);
  }
}
