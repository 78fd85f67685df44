import { PcepDecodeError } from './errors.js';

/**
 * Bounds-checked big-endian reads over one slice of the input. Every read that would pass the
 * slice's end throws TRUNCATED, so no decoder ever reads out of range. `base` is the slice's
 * position in the whole message, for error offsets.
 */
export class Reader {
  #pos = 0;
  constructor(
    private readonly buf: Buffer,
    private readonly base = 0,
  ) {}

  get offset(): number {
    return this.base + this.#pos;
  }

  get remaining(): number {
    return this.buf.length - this.#pos;
  }

  #take(n: number, what: string): number {
    if (n > this.remaining) {
      throw new PcepDecodeError('TRUNCATED', `${what}: needs ${n} bytes, ${this.remaining} left`, this.offset);
    }
    const at = this.#pos;
    this.#pos += n;
    return at;
  }

  u8(what: string): number {
    return this.buf[this.#take(1, what)]!;
  }

  u16(what: string): number {
    return this.buf.readUInt16BE(this.#take(2, what));
  }

  u32(what: string): number {
    return this.buf.readUInt32BE(this.#take(4, what));
  }

  f32(what: string): number {
    return this.buf.readFloatBE(this.#take(4, what));
  }

  ipv4(what: string): string {
    const at = this.#take(4, what);
    return `${this.buf[at]}.${this.buf[at + 1]}.${this.buf[at + 2]}.${this.buf[at + 3]}`;
  }

  /** A copy, so decoded values never alias the caller's input buffer. */
  bytes(n: number, what: string): Buffer {
    const at = this.#take(n, what);
    return Buffer.from(this.buf.subarray(at, at + n));
  }

  /** A sub-reader over the next n bytes (errors inside it keep absolute offsets). */
  slice(n: number, what: string): Reader {
    const at = this.#take(n, what);
    return new Reader(this.buf.subarray(at, at + n), this.base + at);
  }

  rest(): Buffer {
    return this.bytes(this.remaining, 'rest');
  }

  /** Fails unless the field is zero: Reserved fields must be zero here (see errors.ts). */
  reserved(value: number, what: string, at: number): void {
    if (value !== 0) throw new PcepDecodeError('RESERVED_BITS', `${what} is 0x${value.toString(16)}, not 0`, at);
  }
}

/** Encodes a dotted-quad IPv4 address; a TypeError for anything else (a programming error). */
export function ipv4Bytes(address: string): Buffer {
  const parts = address.split('.');
  const octets = parts.map((p) => (/^(0|[1-9]\d{0,2})$/.test(p) ? Number(p) : NaN));
  if (octets.length !== 4 || octets.some((o) => !(o <= 255))) throw new TypeError(`not an IPv4 address: ${address}`);
  return Buffer.from(octets);
}

/** Throws a TypeError unless `value` is an integer in [0, max] (encoders refuse what does not fit). */
export function checkUint(value: number, max: number, what: string): number {
  if (!Number.isInteger(value) || value < 0 || value > max) throw new TypeError(`${what} must be 0..${max}: ${value}`);
  return value;
}
