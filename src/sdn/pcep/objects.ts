import { PcepDecodeError } from './errors.js';
import { encodeSubobject, readSubobjects, type EroSubobject } from './ero.js';
import { checkUint, ipv4Bytes, Reader } from './reader.js';

/** Object classes this codec decodes (all object-type 1); RFC 5440 section 9.2, RFC 7470 for 34. */
export const OBJECT_CLASS = {
  open: 1,
  rp: 2,
  noPath: 3,
  endPoints: 4,
  metric: 6,
  ero: 7,
  error: 13,
  close: 15,
  vendorInfo: 34,
} as const;

/** The P (processing rule) and I (ignore) bits of the object header (RFC 5440 section 7.2). */
interface ObjectFlags {
  readonly p: boolean;
  readonly i: boolean;
}

/** Bodies that may end in TLVs keep them as bytes: this library reads none of them. */
export interface OpenObject extends ObjectFlags {
  readonly kind: 'open';
  readonly flags: number;
  readonly keepalive: number;
  readonly deadTimer: number;
  readonly sessionId: number;
  readonly tlvs: Buffer;
}
export interface RpObject extends ObjectFlags {
  readonly kind: 'rp';
  /** All 32 flag bits; the priority is the low 3 (RP_PRIORITY_MASK), R/B/O the next three. */
  readonly flags: number;
  readonly requestId: number;
  readonly tlvs: Buffer;
}
export interface NoPathObject extends ObjectFlags {
  readonly kind: 'no-path';
  readonly natureOfIssue: number;
  readonly flags: number;
  readonly tlvs: Buffer;
}
export interface EndPointsObject extends ObjectFlags {
  readonly kind: 'end-points';
  readonly source: string;
  readonly destination: string;
}
export interface MetricObject extends ObjectFlags {
  readonly kind: 'metric';
  readonly flags: number;
  readonly metricType: number;
  /** An IEEE 754 single-precision value (so only float32 values round-trip). */
  readonly value: number;
}
export interface EroObject extends ObjectFlags {
  readonly kind: 'ero';
  readonly subobjects: readonly EroSubobject[];
}
export interface VendorInfoObject extends ObjectFlags {
  readonly kind: 'vendor-info';
  readonly enterpriseNumber: number;
  readonly info: Buffer;
}
export interface ErrorObject extends ObjectFlags {
  readonly kind: 'error';
  readonly flags: number;
  readonly errorType: number;
  readonly errorValue: number;
  readonly tlvs: Buffer;
}
export interface CloseObject extends ObjectFlags {
  readonly kind: 'close';
  readonly flags: number;
  readonly reason: number;
  readonly tlvs: Buffer;
}
/** Any other class or object-type, kept as it came; the PCE answers it with PCErr 3 or 4. */
export interface RawObject extends ObjectFlags {
  readonly kind: 'raw';
  readonly objectClass: number;
  readonly objectType: number;
  readonly body: Buffer;
}

export type PcepObject =
  | OpenObject
  | RpObject
  | NoPathObject
  | EndPointsObject
  | MetricObject
  | EroObject
  | VendorInfoObject
  | ErrorObject
  | CloseObject
  | RawObject;

export const RP_PRIORITY_MASK = 0x7;

const u8 = (v: number, what: string) => Buffer.from([checkUint(v, 0xff, what)]);
const u16 = (v: number, what: string) => Buffer.from([checkUint(v, 0xffff, what) >> 8, v & 0xff]);
const u32 = (v: number, what: string) => {
  const b = Buffer.alloc(4);
  b.writeUInt32BE(checkUint(v, 0xffffffff, what));
  return b;
};

function body(o: PcepObject): [cls: number, type: number, body: Buffer] {
  switch (o.kind) {
    case 'open':
      return [
        1,
        1,
        Buffer.concat([
          u8(0x20 | checkUint(o.flags, 0x1f, 'OPEN flags'), 'v'),
          u8(o.keepalive, 'keepalive'),
          u8(o.deadTimer, 'deadtimer'),
          u8(o.sessionId, 'SID'),
          o.tlvs,
        ]),
      ];
    case 'rp':
      return [2, 1, Buffer.concat([u32(o.flags, 'RP flags'), u32(o.requestId, 'request ID'), o.tlvs])];
    case 'no-path':
      return [3, 1, Buffer.concat([u8(o.natureOfIssue, 'NI'), u16(o.flags, 'NO-PATH flags'), u8(0, 'r'), o.tlvs])];
    case 'end-points':
      return [4, 1, Buffer.concat([ipv4Bytes(o.source), ipv4Bytes(o.destination)])];
    case 'metric': {
      const value = Buffer.alloc(4);
      if (Number.isNaN(o.value)) throw new TypeError('metric value is NaN');
      value.writeFloatBE(o.value);
      return [6, 1, Buffer.concat([u16(0, 'r'), u8(o.flags, 'METRIC flags'), u8(o.metricType, 'metric type'), value])];
    }
    case 'ero':
      return [7, 1, Buffer.concat(o.subobjects.map(encodeSubobject))];
    case 'vendor-info':
      return [34, 1, Buffer.concat([u32(o.enterpriseNumber, 'enterprise number'), o.info])];
    case 'error':
      return [
        13,
        1,
        Buffer.concat([
          u8(0, 'r'),
          u8(o.flags, 'PCEP-ERROR flags'),
          u8(o.errorType, 'error type'),
          u8(o.errorValue, 'error value'),
          o.tlvs,
        ]),
      ];
    case 'close':
      return [15, 1, Buffer.concat([u16(0, 'r'), u8(o.flags, 'CLOSE flags'), u8(o.reason, 'reason'), o.tlvs])];
    case 'raw':
      if (isDecoded(o.objectClass, o.objectType))
        throw new TypeError(`object ${o.objectClass}/${o.objectType} is not raw`);
      return [checkUint(o.objectClass, 0xff, 'object class'), checkUint(o.objectType, 0xf, 'object type'), o.body];
  }
}

const isDecoded = (cls: number, type: number) => type === 1 && Object.values(OBJECT_CLASS).some((c) => c === cls);

/** Encodes one object. Only an ERO may have a length that is not a multiple of 4 (see docs/sdn.md). */
export function encodeObject(o: PcepObject): Buffer {
  const [cls, type, content] = body(o);
  const length = 4 + content.length;
  if (length > 0xffff) throw new TypeError(`object of ${length} bytes is too long`);
  if (length % 4 !== 0 && o.kind !== 'ero')
    throw new TypeError(`object class ${cls}: length ${length} is not a multiple of 4`);
  const head = Buffer.from([cls, (type << 4) | (o.p ? 2 : 0) | (o.i ? 1 : 0), length >> 8, length & 0xff]);
  return Buffer.concat([head, content]);
}

/** Decodes one object from `r`, which must hold at least its whole length. */
export function readObject(r: Reader): PcepObject {
  const at = r.offset;
  const cls = r.u8('object class');
  const second = r.u8('object type');
  const length = r.u16('object length');
  const type = second >> 4;
  r.reserved(second & 0x0c, 'object header reserved bits', at + 1);
  const flags = { p: (second & 2) !== 0, i: (second & 1) !== 0 };
  const decoded = isDecoded(cls, type);
  if (length < 4 || length - 4 > r.remaining || (length % 4 !== 0 && !(decoded && cls === OBJECT_CLASS.ero))) {
    throw new PcepDecodeError('BAD_LENGTH', `object ${cls}/${type}: length ${length} is invalid here`, at + 2);
  }
  const b = r.slice(length - 4, 'object body');
  if (!decoded) return { kind: 'raw', ...flags, objectClass: cls, objectType: type, body: b.rest() };
  const fixed = (n: number) => {
    if (length !== 4 + n) throw new PcepDecodeError('BAD_LENGTH', `object ${cls}: length ${length} ≠ ${4 + n}`, at + 2);
  };
  switch (cls) {
    case OBJECT_CLASS.open: {
      const vf = b.u8('OPEN version');
      if (vf >> 5 !== 1) throw new PcepDecodeError('BAD_VERSION', `OPEN object version ${vf >> 5}`, at + 4);
      const [keepalive, deadTimer, sessionId] = [b.u8('keepalive'), b.u8('deadtimer'), b.u8('SID')];
      return { kind: 'open', ...flags, flags: vf & 0x1f, keepalive, deadTimer, sessionId, tlvs: b.rest() };
    }
    case OBJECT_CLASS.rp:
      return { kind: 'rp', ...flags, flags: b.u32('RP flags'), requestId: b.u32('request ID'), tlvs: b.rest() };
    case OBJECT_CLASS.noPath: {
      const [natureOfIssue, noPathFlags] = [b.u8('NI'), b.u16('NO-PATH flags')];
      b.reserved(b.u8('reserved'), 'NO-PATH reserved byte', at + 7);
      return { kind: 'no-path', ...flags, natureOfIssue, flags: noPathFlags, tlvs: b.rest() };
    }
    case OBJECT_CLASS.endPoints:
      fixed(8);
      return { kind: 'end-points', ...flags, source: b.ipv4('source'), destination: b.ipv4('destination') };
    case OBJECT_CLASS.metric: {
      fixed(8);
      b.reserved(b.u16('reserved'), 'METRIC reserved field', at + 4);
      const [metricFlags, metricType, value] = [b.u8('METRIC flags'), b.u8('metric type'), b.f32('metric value')];
      if (Number.isNaN(value)) throw new PcepDecodeError('BAD_VALUE', 'metric value is NaN', at + 8);
      return { kind: 'metric', ...flags, flags: metricFlags, metricType, value };
    }
    case OBJECT_CLASS.ero:
      return { kind: 'ero', ...flags, subobjects: readSubobjects(b) };
    case OBJECT_CLASS.vendorInfo:
      return { kind: 'vendor-info', ...flags, enterpriseNumber: b.u32('enterprise number'), info: b.rest() };
    case OBJECT_CLASS.error: {
      b.reserved(b.u8('reserved'), 'PCEP-ERROR reserved byte', at + 4);
      const [errorFlags, errorType, errorValue] = [b.u8('flags'), b.u8('error type'), b.u8('error value')];
      return { kind: 'error', ...flags, flags: errorFlags, errorType, errorValue, tlvs: b.rest() };
    }
    default: {
      b.reserved(b.u16('reserved'), 'CLOSE reserved field', at + 4);
      const [closeFlags, reason] = [b.u8('flags'), b.u8('reason')];
      return { kind: 'close', ...flags, flags: closeFlags, reason, tlvs: b.rest() };
    }
  }
}
