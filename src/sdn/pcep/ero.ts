import { PcepDecodeError } from './errors.js';
import { checkUint, ipv4Bytes, Reader } from './reader.js';

/** The slides' four QKD request parameters, in the order and widths of their QE subobject. */
export interface QkdParams {
  /** Key length (uint16; 32 in both captures). */
  readonly keyLength: number;
  /** Encryption layer (uint8; 2 in both captures). */
  readonly encryptionLayer: number;
  /** Refresh type (uint8; 0xfc in both captures). */
  readonly refreshType: number;
  /** Refresh value (uint16; 0x03e8 and 0xffe8 in the captures). */
  readonly refreshValue: number;
  /** Algorithm (uint16; 10 in both captures). */
  readonly algorithm: number;
}

/** ERO subobject types (RFC 3209 for IPv4; 0x67 is the slides' experimental QE value, no IETF document defines it). */
export const IPV4_SUBOBJECT = 1;
export const QE_SUBOBJECT = 0x67;
/** 2 header bytes + 64-byte key handle + 8 bytes of QKD parameters = 74 = 0x4a, as captured. */
export const QE_SUBOBJECT_LENGTH = 0x4a;
export const KEY_HANDLE_BYTES = 64;
export const QKD_PARAMS_BYTES = 8;

/** IPv4 prefix subobject (type 1, length 8): address, prefix length, one reserved byte. */
export interface Ipv4Subobject {
  readonly kind: 'ipv4';
  /** The L bit: a loose hop. */
  readonly loose: boolean;
  readonly address: string;
  readonly prefixLength: number;
}

/** The QE subobject: a 64-byte key handle (all zero = not yet set) and the QKD parameters. */
export interface QeSubobject extends QkdParams {
  readonly kind: 'qe';
  readonly loose: boolean;
  readonly keyHandle: Buffer;
}

/** Any other subobject type, kept as it came so that it re-encodes byte for byte. */
export interface RawSubobject {
  readonly kind: 'raw';
  readonly loose: boolean;
  readonly type: number;
  readonly body: Buffer;
}

export type EroSubobject = Ipv4Subobject | QeSubobject | RawSubobject;

export const UNSET_KEY_HANDLE: Buffer = Buffer.alloc(KEY_HANDLE_BYTES);

export function encodeQkdParams(p: QkdParams): Buffer {
  const out = Buffer.alloc(QKD_PARAMS_BYTES);
  out.writeUInt16BE(checkUint(p.keyLength, 0xffff, 'key length'), 0);
  out.writeUInt8(checkUint(p.encryptionLayer, 0xff, 'encryption layer'), 2);
  out.writeUInt8(checkUint(p.refreshType, 0xff, 'refresh type'), 3);
  out.writeUInt16BE(checkUint(p.refreshValue, 0xffff, 'refresh value'), 4);
  out.writeUInt16BE(checkUint(p.algorithm, 0xffff, 'algorithm'), 6);
  return out;
}

export function readQkdParams(r: Reader): QkdParams {
  return {
    keyLength: r.u16('key length'),
    encryptionLayer: r.u8('encryption layer'),
    refreshType: r.u8('refresh type'),
    refreshValue: r.u16('refresh value'),
    algorithm: r.u16('algorithm'),
  };
}

function header(loose: boolean, type: number, length: number): Buffer {
  return Buffer.from([(loose ? 0x80 : 0) | checkUint(type, 0x7f, 'subobject type'), checkUint(length, 0xff, 'length')]);
}

export function encodeSubobject(s: EroSubobject): Buffer {
  switch (s.kind) {
    case 'ipv4':
      return Buffer.concat([
        header(s.loose, IPV4_SUBOBJECT, 8),
        ipv4Bytes(s.address),
        Buffer.from([checkUint(s.prefixLength, 32, 'prefix length'), 0]),
      ]);
    case 'qe':
      if (s.keyHandle.length !== KEY_HANDLE_BYTES) throw new TypeError(`key handle must be ${KEY_HANDLE_BYTES} bytes`);
      return Buffer.concat([header(s.loose, QE_SUBOBJECT, QE_SUBOBJECT_LENGTH), s.keyHandle, encodeQkdParams(s)]);
    case 'raw':
      if (s.type === IPV4_SUBOBJECT || s.type === QE_SUBOBJECT) throw new TypeError(`subobject ${s.type} is not raw`);
      return Buffer.concat([header(s.loose, s.type, 2 + s.body.length), s.body]);
  }
}

/** Decodes one subobject from `r`; its length byte must fit what remains of the ERO. */
export function readSubobject(r: Reader): EroSubobject {
  const at = r.offset;
  const first = r.u8('subobject type');
  const length = r.u8('subobject length');
  const loose = (first & 0x80) !== 0;
  const type = first & 0x7f;
  if (length < 2 || length - 2 > r.remaining) {
    throw new PcepDecodeError(
      'BAD_LENGTH',
      `ERO subobject ${type}: length ${length} outside 2..${r.remaining + 2}`,
      at,
    );
  }
  const body = r.slice(length - 2, 'subobject body');
  const expect = type === IPV4_SUBOBJECT ? 8 : type === QE_SUBOBJECT ? QE_SUBOBJECT_LENGTH : length;
  if (length !== expect)
    throw new PcepDecodeError('BAD_LENGTH', `ERO subobject ${type}: length ${length} ≠ ${expect}`, at);
  if (type === IPV4_SUBOBJECT) {
    const address = body.ipv4('IPv4 address');
    const prefixAt = body.offset;
    const prefixLength = body.u8('prefix length');
    if (prefixLength > 32) throw new PcepDecodeError('BAD_VALUE', `IPv4 prefix length ${prefixLength}`, prefixAt);
    body.reserved(body.u8('reserved'), 'IPv4 subobject reserved byte', prefixAt + 1);
    return { kind: 'ipv4', loose, address, prefixLength };
  }
  if (type === QE_SUBOBJECT) {
    const keyHandle = body.bytes(KEY_HANDLE_BYTES, 'key handle');
    return { kind: 'qe', loose, keyHandle, ...readQkdParams(body) };
  }
  return { kind: 'raw', loose, type, body: body.rest() };
}

/** An ERO body is its subobjects back to back, with no padding (see docs/sdn.md on alignment). */
export function readSubobjects(r: Reader): EroSubobject[] {
  const out: EroSubobject[] = [];
  while (r.remaining > 0) out.push(readSubobject(r));
  return out;
}
