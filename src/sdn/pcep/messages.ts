import { PcepDecodeError } from './errors.js';
import { encodeObject, readObject, type CloseObject, type OpenObject, type PcepObject } from './objects.js';
import { checkUint, Reader } from './reader.js';

/** Message types (RFC 5440 section 6.1). Notification (5) and later types decode as 'unknown'. */
export const MESSAGE_TYPE = { open: 1, keepalive: 2, pcreq: 3, pcrep: 4, pcerr: 6, close: 7 } as const;
export const PCEP_VERSION = 1;
export const HEADER_BYTES = 4;
/**
 * The largest message accepted by default. The length field allows 65535; 16 KiB is far above any
 * message this PCE exchanges (a 200-hop ERO is about 1.7 KB) and bounds what one peer can make it buffer.
 */
export const MAX_MESSAGE_BYTES = 16 * 1024;

/** Messages by type; PCReq, PCRep and PCErr keep their object list (pcreq.ts reads the grammar). */
export type PcepMessage =
  | { readonly type: 'open'; readonly open: OpenObject }
  | { readonly type: 'keepalive' }
  | { readonly type: 'pcreq'; readonly objects: readonly PcepObject[] }
  | { readonly type: 'pcrep'; readonly objects: readonly PcepObject[] }
  | { readonly type: 'pcerr'; readonly objects: readonly PcepObject[] }
  | { readonly type: 'close'; readonly close: CloseObject }
  /** Any other message type, body kept as bytes (the PCE logs and ignores it). */
  | { readonly type: 'unknown'; readonly messageType: number; readonly body: Buffer };

function typeAndBody(m: PcepMessage): [number, Buffer] {
  switch (m.type) {
    case 'open':
      return [MESSAGE_TYPE.open, encodeObject(m.open)];
    case 'keepalive':
      return [MESSAGE_TYPE.keepalive, Buffer.alloc(0)];
    case 'pcreq':
    case 'pcrep':
    case 'pcerr':
      return [MESSAGE_TYPE[m.type], Buffer.concat(m.objects.map(encodeObject))];
    case 'close':
      return [MESSAGE_TYPE.close, encodeObject(m.close)];
    case 'unknown':
      if (Object.values(MESSAGE_TYPE).some((t) => t === m.messageType)) throw new TypeError('not an unknown type');
      return [checkUint(m.messageType, 0xff, 'message type'), m.body];
  }
}

export function encodeMessage(m: PcepMessage): Buffer {
  const [type, body] = typeAndBody(m);
  const length = HEADER_BYTES + body.length;
  if (length > 0xffff) throw new TypeError(`message of ${length} bytes is too long`);
  return Buffer.concat([Buffer.from([PCEP_VERSION << 5, type, length >> 8, length & 0xff]), body]);
}

/**
 * Checks a common header and returns the message's declared length: enough to frame a TCP
 * stream without buffering anything a valid message could not be.
 */
export function readHeader(buf: Buffer, maxBytes = MAX_MESSAGE_BYTES): { type: number; length: number } {
  const r = new Reader(buf);
  const first = r.u8('version and flags');
  const type = r.u8('message type');
  const length = r.u16('message length');
  if (first >> 5 !== PCEP_VERSION) throw new PcepDecodeError('BAD_VERSION', `PCEP version ${first >> 5}`, 0);
  r.reserved(first & 0x1f, 'common header flags', 0);
  if (length < HEADER_BYTES) throw new PcepDecodeError('BAD_LENGTH', `message length ${length} < 4`, 2);
  if (length > maxBytes) throw new PcepDecodeError('MESSAGE_TOO_LARGE', `message length ${length} > ${maxBytes}`, 2);
  return { type, length };
}

const only = <K extends PcepObject['kind']>(objects: PcepObject[], kind: K, what: string) => {
  const [o] = objects;
  if (objects.length !== 1 || o!.kind !== kind)
    throw new PcepDecodeError('BAD_MESSAGE', `${what} must hold one ${kind} object`, 4);
  return o as Extract<PcepObject, { kind: K }>;
};

/** Decodes exactly one whole message; anything else is a PcepDecodeError, never a partial result. */
export function decodeMessage(buf: Buffer, maxBytes = MAX_MESSAGE_BYTES): PcepMessage {
  const { type, length } = readHeader(buf, maxBytes);
  if (buf.length < length)
    throw new PcepDecodeError('TRUNCATED', `message of ${length} bytes, ${buf.length} given`, buf.length);
  if (buf.length > length)
    throw new PcepDecodeError('BAD_LENGTH', `${buf.length - length} bytes after the message`, length);
  const r = new Reader(buf.subarray(HEADER_BYTES), HEADER_BYTES);
  if (!Object.values(MESSAGE_TYPE).some((t) => t === type))
    return { type: 'unknown', messageType: type, body: r.rest() };
  const objects: PcepObject[] = [];
  while (r.remaining > 0) objects.push(readObject(r));
  switch (type) {
    case MESSAGE_TYPE.open:
      return { type: 'open', open: only(objects, 'open', 'Open') };
    case MESSAGE_TYPE.keepalive:
      if (objects.length) throw new PcepDecodeError('BAD_MESSAGE', 'Keepalive must be empty', 4);
      return { type: 'keepalive' };
    case MESSAGE_TYPE.close:
      return { type: 'close', close: only(objects, 'close', 'Close') };
    case MESSAGE_TYPE.pcerr:
      if (!objects.some((o) => o.kind === 'error'))
        throw new PcepDecodeError('BAD_MESSAGE', 'PCErr without PCEP-ERROR', 4);
      return { type: 'pcerr', objects };
    case MESSAGE_TYPE.pcreq:
      return { type: 'pcreq', objects };
    default:
      return { type: 'pcrep', objects };
  }
}

/** Cuts a TCP byte stream into whole messages; a bad header throws before its body is awaited. */
export class PcepFramer {
  #pending: Buffer = Buffer.alloc(0);
  constructor(private readonly maxBytes = MAX_MESSAGE_BYTES) {}

  push(chunk: Buffer): Buffer[] {
    this.#pending = this.#pending.length ? Buffer.concat([this.#pending, chunk]) : chunk;
    const frames: Buffer[] = [];
    while (this.#pending.length >= HEADER_BYTES) {
      const { length } = readHeader(this.#pending, this.maxBytes);
      if (this.#pending.length < length) break;
      frames.push(this.#pending.subarray(0, length));
      this.#pending = this.#pending.subarray(length);
    }
    return frames;
  }
}
