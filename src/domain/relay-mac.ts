import { poly1305 } from '@noble/ciphers/_poly1305.js';
import { timingSafeEqual } from 'node:crypto';

/**
 * The one-time MAC of a relay hop's answer: Poly1305 (RFC 8439) keyed with 32 bytes of fresh QKD
 * material of that hop's link, used for one message only. With a uniformly random one-time key it
 * is an information-theoretic authenticator (Wegman–Carter): a forgery succeeds with probability
 * at most about 2^-100 for these message sizes, whatever the attacker's computing power.
 */
export const RELAY_MAC_KEY_BYTES = 32;

/** What the MAC covers: each key ID and its mask, in order, with their lengths. */
function encode(masks: ReadonlyArray<{ keyId: string; mask: Uint8Array }>): Buffer {
  const parts: Buffer[] = [];
  for (const m of masks) {
    const id = Buffer.from(m.keyId, 'utf8');
    const head = Buffer.alloc(8);
    head.writeUInt32BE(id.length, 0);
    head.writeUInt32BE(m.mask.length, 4);
    parts.push(head, id, Buffer.from(m.mask));
  }
  return Buffer.concat(parts);
}

export function relayTag(macKey: Uint8Array, masks: ReadonlyArray<{ keyId: string; mask: Uint8Array }>): Buffer {
  if (macKey.length !== RELAY_MAC_KEY_BYTES) throw new RangeError('a relay MAC key is 32 bytes');
  return Buffer.from(poly1305(encode(masks), macKey));
}

export function relayTagValid(
  macKey: Uint8Array,
  masks: ReadonlyArray<{ keyId: string; mask: Uint8Array }>,
  tag: Uint8Array,
): boolean {
  const expected = relayTag(macKey, masks);
  return tag.length === expected.length && timingSafeEqual(expected, tag);
}

/** a XOR b, of equal lengths: a one-time pad's encryption and decryption. */
export function xor(a: Uint8Array, b: Uint8Array): Buffer {
  if (a.length !== b.length) throw new RangeError('one-time pad: lengths differ');
  const out = Buffer.alloc(a.length);
  for (let i = 0; i < a.length; i++) out[i] = a[i]! ^ b[i]!;
  return out;
}
