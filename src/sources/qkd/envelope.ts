import { badRequest } from '../../domain/errors.js';
import type { LinkChannel } from './leader.js';
import type { QkdOp } from './wire.js';

/**
 * The binary body of a post-processing message (application/octet-stream): bit arrays travel as
 * raw bytes, not base64 inside JSON, which cost more CPU than the post-processing itself. Layout:
 * u32 LE length of a UTF-8 JSON header, the header (the message's other fields, plus `$binary`:
 * the names of the byte fields in order), then each byte field as u32 LE length and bytes.
 */

export type Message = Record<string, unknown>;

export const ENVELOPE_TYPE = 'application/octet-stream';
const MAX_FIELDS = 16;
const FIELD_NAME = /^[A-Za-z][A-Za-z0-9_]{0,39}$/;

/**
 * The body in pieces, the byte fields among them as they are (not copied): the peer stream writes
 * them one after the other, which spares a copy of a frame's megabytes at each end.
 */
export function envelopeParts(message: Message): Uint8Array[] {
  const header: Message = {};
  const names: string[] = [];
  const parts: Uint8Array[] = [];
  for (const [name, value] of Object.entries(message)) {
    if (value instanceof Uint8Array) {
      names.push(name);
      const length = Buffer.alloc(4);
      length.writeUInt32LE(value.byteLength);
      parts.push(length, value);
    } else header[name] = value;
  }
  if (names.length > 0) header['$binary'] = names;
  const json = Buffer.from(JSON.stringify(header));
  const length = Buffer.alloc(4);
  length.writeUInt32LE(json.length);
  return [length, json, ...parts];
}

export const encodeEnvelope = (message: Message): Buffer => Buffer.concat(envelopeParts(message));

/** Decodes and checks a body; the byte fields are views into it. */
export function decodeEnvelope(body: Uint8Array): Message {
  const bytes = Buffer.from(body.buffer, body.byteOffset, body.byteLength);
  const fail = (why: string) => badRequest(`message body ${why}`);
  if (bytes.length < 4) throw fail('is truncated');
  const headerEnd = 4 + bytes.readUInt32LE(0);
  if (headerEnd > bytes.length) throw fail('is truncated');
  let header: unknown;
  try {
    header = JSON.parse(bytes.toString('utf8', 4, headerEnd));
  } catch {
    throw fail('has a header that is not JSON');
  }
  if (typeof header !== 'object' || header === null || Array.isArray(header)) throw fail('header must be an object');
  const message = header as Message;
  const names = message['$binary'] ?? [];
  delete message['$binary'];
  if (!Array.isArray(names) || names.length > MAX_FIELDS) throw fail('has a bad list of byte fields');
  let at = headerEnd;
  for (const name of names) {
    // Plain names only (never `__proto__`), and none that a header field already has.
    if (typeof name !== 'string' || !FIELD_NAME.test(name) || Object.hasOwn(message, name)) {
      throw fail('has a bad list of byte fields');
    }
    if (at + 4 > bytes.length) throw fail('is truncated');
    const end = at + 4 + bytes.readUInt32LE(at);
    if (end > bytes.length) throw fail('is truncated');
    message[name] = bytes.subarray(at + 4, end);
    at = end;
  }
  if (at !== bytes.length) throw fail('has trailing bytes');
  return message;
}

/** A leader's channel over a transport of binary bodies (the KME-to-KME channel, or a test's). */
export function envelopeChannel(send: (op: QkdOp, body: Uint8Array[]) => Promise<Uint8Array>): LinkChannel {
  return { call: async (op, message) => decodeEnvelope(await send(op, envelopeParts(message))) };
}
