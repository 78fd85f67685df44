import { badRequest } from '../../domain/errors.js';
import { bitsToBytes, bytesToBits, type Bits } from '../../qkd/bits.js';

/**
 * Encodings of the post-processing messages' fields and their checks. Bit arrays are raw bytes
 * (the message body is binary, envelope.ts); whatever the peer sends is validated before use,
 * and a malformed message is refused with a reason.
 */

export const QKD_OPS = ['fibre', 'detections', 'sifting', 'cascade', 'verify', 'amplify', 'discard'] as const;
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
  const out = Buffer.alloc(words.length * 4);
  for (let i = 0; i < words.length; i++) out.writeUInt32LE(words[i]!, 4 * i);
  return out;
}

export function decodeU32(value: unknown, what: string, maxWords: number): Uint32Array {
  const bytes = bytesOf(value, what);
  if (bytes.length % 4 !== 0 || bytes.length / 4 > maxWords) throw badRequest(`${what} has a wrong length`);
  const out = new Uint32Array(bytes.length / 4);
  for (let i = 0; i < out.length; i++) out[i] = bytes.readUInt32LE(4 * i);
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
  const out = new Uint8Array((values.length + 3) >>> 2);
  for (let i = 0; i < values.length; i++) out[i >>> 2]! |= (values[i]! & 3) << ((i & 3) * 2);
  return view(out);
}

export function decodeCrumbs(value: unknown, count: number, what: string, max = 3): Uint8Array {
  const bytes = bytesOf(value, what);
  if (bytes.length !== (count + 3) >>> 2) throw badRequest(`${what} must hold ${count} values`);
  const out = new Uint8Array(count);
  for (let i = 0; i < count; i++) {
    out[i] = (bytes[i >>> 2]! >>> ((i & 3) * 2)) & 3;
    if (out[i]! > max) throw badRequest(`${what} holds a value above ${max}`);
  }
  return out;
}

/** Increasing pulse indices as LEB128 gaps: about 1.5 bytes per click at typical click rates. */
export function encodeIndices(indices: Uint32Array): Buffer {
  const out = Buffer.allocUnsafe(indices.length * 5);
  let at = 0;
  let prev = -1;
  for (let i = 0; i < indices.length; i++) {
    const index = indices[i]!;
    let gap = index - prev - 1;
    prev = index;
    while (gap >= 0x80) {
      out[at++] = (gap & 0x7f) | 0x80;
      gap >>>= 7;
    }
    out[at++] = gap;
  }
  return out.subarray(0, at);
}

export function decodeIndices(value: unknown, count: number, below: number, what: string): Uint32Array {
  const bytes = bytesOf(value, what);
  const out = new Uint32Array(count);
  let at = 0;
  let prev = -1;
  for (let i = 0; i < count; i++) {
    if (at >= bytes.length) throw badRequest(`${what} is truncated or malformed`);
    let byte = bytes[at++]!;
    let gap = byte & 0x7f;
    let scale = 128;
    while (byte >= 0x80) {
      if (at >= bytes.length || scale > 2 ** 28) throw badRequest(`${what} is truncated or malformed`);
      byte = bytes[at++]!;
      gap += (byte & 0x7f) * scale;
      scale *= 128;
    }
    prev += gap + 1;
    if (prev >= below) throw badRequest(`${what} names a pulse outside the frame`);
    out[i] = prev;
  }
  if (at !== bytes.length) throw badRequest(`${what} has trailing bytes`);
  return out;
}
