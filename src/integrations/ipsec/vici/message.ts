/**
 * VICI message encoding (strongSwan's `src/libcharon/plugins/vici/README.md`): a message is a
 * sequence of elements — sections, key/value pairs and lists — each introduced by a type byte.
 * Names are 8-bit length-prefixed ASCII, values 16-bit (big-endian) length-prefixed bytes.
 */
export type ViciValue = string | Buffer;
export interface ViciMessage {
  [name: string]: ViciValue | ViciValue[] | ViciMessage;
}
/** What a caller may put in a message; numbers and booleans become the text strongSwan expects. */
export type ViciInput = { [name: string]: ViciInputValue };
type ViciScalar = string | number | boolean | Buffer;
type ViciInputValue = ViciScalar | ViciScalar[] | ViciInput;

const SECTION_START = 1;
const SECTION_END = 2;
const KEY_VALUE = 3;
const LIST_START = 4;
const LIST_ITEM = 5;
const LIST_END = 6;

export class ViciEncodingError extends Error {}

const scalar = (v: ViciScalar): Buffer =>
  Buffer.isBuffer(v) ? v : Buffer.from(typeof v === 'boolean' ? (v ? 'yes' : 'no') : String(v));

function name(n: string): Buffer {
  const b = Buffer.from(n, 'ascii');
  if (b.length === 0 || b.length > 255) throw new ViciEncodingError(`VICI name must be 1–255 bytes: ${n}`);
  return Buffer.concat([Buffer.from([b.length]), b]);
}

function value(v: ViciScalar): Buffer {
  const b = scalar(v);
  if (b.length > 0xffff) throw new ViciEncodingError('VICI value longer than 65535 bytes');
  const len = Buffer.alloc(2);
  len.writeUInt16BE(b.length);
  return Buffer.concat([len, b]);
}

export function encodeMessage(msg: ViciInput): Buffer {
  const parts: Buffer[] = [];
  const walk = (m: ViciInput) => {
    for (const [k, v] of Object.entries(m)) {
      if (Array.isArray(v)) {
        parts.push(Buffer.from([LIST_START]), name(k));
        for (const item of v) parts.push(Buffer.from([LIST_ITEM]), value(item));
        parts.push(Buffer.from([LIST_END]));
      } else if (typeof v === 'object' && !Buffer.isBuffer(v)) {
        parts.push(Buffer.from([SECTION_START]), name(k));
        walk(v);
        parts.push(Buffer.from([SECTION_END]));
      } else {
        parts.push(Buffer.from([KEY_VALUE]), name(k), value(v));
      }
    }
  };
  walk(msg);
  return Buffer.concat(parts);
}

/** Decodes a message; values come back as UTF-8 strings (VICI answers are text). */
export function decodeMessage(buf: Buffer): ViciMessage {
  let at = 0;
  const need = (n: number) => {
    if (at + n > buf.length) throw new ViciEncodingError('truncated VICI message');
  };
  const readName = () => {
    need(1);
    const len = buf[at++]!;
    need(len);
    return buf.toString('ascii', at, (at += len));
  };
  const readValue = () => {
    need(2);
    const len = buf.readUInt16BE(at);
    at += 2;
    need(len);
    return buf.toString('utf8', at, (at += len));
  };
  const root: ViciMessage = {};
  const stack: ViciMessage[] = [root];
  // An own property whatever the name: `__proto__` from the wire must not become a prototype.
  const put = (m: ViciMessage, k: string, v: ViciMessage[string]) =>
    Object.defineProperty(m, k, { value: v, enumerable: true, writable: true, configurable: true });
  while (at < buf.length) {
    const type = buf[at++]!;
    const top = stack[stack.length - 1]!;
    switch (type) {
      case SECTION_START: {
        const section: ViciMessage = {};
        put(top, readName(), section);
        stack.push(section);
        break;
      }
      case SECTION_END:
        if (stack.length === 1) throw new ViciEncodingError('VICI section end without start');
        stack.pop();
        break;
      case KEY_VALUE: {
        put(top, readName(), readValue());
        break;
      }
      case LIST_START: {
        const k = readName();
        const items: string[] = [];
        while (buf[at] === LIST_ITEM) {
          at++;
          items.push(readValue());
        }
        need(1);
        if (buf[at++] !== LIST_END) throw new ViciEncodingError('VICI list not closed');
        put(top, k, items);
        break;
      }
      default:
        throw new ViciEncodingError(`unknown VICI element type ${type}`);
    }
  }
  if (stack.length !== 1) throw new ViciEncodingError('VICI section not closed');
  return root;
}
