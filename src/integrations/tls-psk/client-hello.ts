import type { Socket } from 'node:net';
import type { PskMode } from './psk-tls.js';

/**
 * What a TLS 1.3 ClientHello offers for a PSK handshake. A Node TLS server cannot tell which key
 * exchange it negotiated (getEphemeralKeyInfo() is for clients only), so the tunnel server reads
 * the ClientHello, which is plaintext, before OpenSSL does, and applies OpenSSL's own choice.
 */
export interface ClientHelloOffer {
  /** psk_key_exchange_modes: 0 = psk_ke, 1 = psk_dhe_ke. */
  readonly pskModes: readonly number[];
  readonly supportedGroups: readonly number[];
  readonly keyShareGroups: readonly number[];
  /** pre_shared_key identities, as text (QKS uses key IDs). */
  readonly pskIdentities: readonly string[];
}

const HANDSHAKE = 22;
const CLIENT_HELLO = 1;
const EXT = { supportedGroups: 10, preSharedKey: 41, pskModes: 45, keyShare: 51 } as const;
/** The named groups a server offers (IANA numbers), for the rule in negotiatedServerMode. */
export const GROUP = { secp256r1: 23, x25519: 29 } as const;

export class ClientHelloError extends Error {
  override name = 'ClientHelloError';
}

/** A cursor over a byte buffer that throws on reading past the end. */
class Reader {
  #at = 0;
  constructor(readonly bytes: Buffer) {}
  get left(): number {
    return this.bytes.length - this.#at;
  }
  take(n: number): Buffer {
    if (n > this.left) throw new ClientHelloError('truncated ClientHello');
    const out = this.bytes.subarray(this.#at, this.#at + n);
    this.#at += n;
    return out;
  }
  u8 = () => this.take(1).readUInt8(0);
  u16 = () => this.take(2).readUInt16BE(0);
  vector = (lengthBytes: 1 | 2) => this.take(lengthBytes === 1 ? this.u8() : this.u16());
}

const u16List = (bytes: Buffer) => Array.from({ length: bytes.length >> 1 }, (_, i) => bytes.readUInt16BE(2 * i));

/**
 * The handshake message carried by the leading TLS records, once all of it has arrived; undefined
 * while more bytes are needed. Throws on anything that is not a ClientHello.
 */
export function clientHelloMessage(stream: Buffer): Buffer | undefined {
  const fragments: Buffer[] = [];
  let at = 0;
  for (;;) {
    if (stream.length < at + 5) return undefined;
    if (stream[at] !== HANDSHAKE) throw new ClientHelloError('not a TLS handshake');
    const length = stream.readUInt16BE(at + 3);
    if (stream.length < at + 5 + length) return undefined;
    fragments.push(stream.subarray(at + 5, at + 5 + length));
    at += 5 + length;
    const message = Buffer.concat(fragments);
    if (message.length >= 4) {
      if (message[0] !== CLIENT_HELLO) throw new ClientHelloError('first handshake message is not a ClientHello');
      const total = 4 + message.readUIntBE(1, 3);
      if (message.length >= total) return message.subarray(0, total);
    }
  }
}

/** Parses a ClientHello handshake message (type, length, body). */
export function parseClientHello(message: Buffer): ClientHelloOffer {
  const r = new Reader(message.subarray(4));
  r.take(2 + 32); // legacy_version, random
  r.vector(1); // legacy_session_id
  r.vector(2); // cipher_suites
  r.vector(1); // legacy_compression_methods
  const offer = { pskModes: [] as number[], supportedGroups: [] as number[], keyShareGroups: [] as number[] };
  const pskIdentities: string[] = [];
  if (r.left === 0) return { ...offer, pskIdentities };
  const extensions = new Reader(r.vector(2));
  while (extensions.left > 0) {
    const type = extensions.u16();
    const data = new Reader(extensions.vector(2));
    if (type === EXT.pskModes) offer.pskModes.push(...data.vector(1));
    else if (type === EXT.supportedGroups) offer.supportedGroups.push(...u16List(data.vector(2)));
    else if (type === EXT.keyShare) {
      const shares = new Reader(data.vector(2));
      while (shares.left > 0) {
        offer.keyShareGroups.push(shares.u16());
        shares.vector(2);
      }
    } else if (type === EXT.preSharedKey) {
      const identities = new Reader(data.vector(2));
      while (identities.left > 0) {
        pskIdentities.push(identities.vector(2).toString('latin1'));
        identities.take(4); // obfuscated_ticket_age
      }
    }
  }
  return { ...offer, pskIdentities };
}

/**
 * The mode OpenSSL (3.x) will negotiate as a server for this offer, or undefined if it cannot use
 * the PSK. OpenSSL takes (EC)DHE whenever the client offers psk_dhe_ke and a group in common
 * exists (it asks for a key share with a HelloRetryRequest if need be); it does psk_ke only when
 * allowed (SSL_OP_ALLOW_NO_DHE_KEX, set for a psk_ke server) and the client offered it.
 */
export function negotiatedServerMode(
  offer: ClientHelloOffer,
  configured: PskMode,
  serverGroups: readonly number[],
): PskMode | undefined {
  const clientGroups = [...offer.supportedGroups, ...offer.keyShareGroups];
  const dhe = offer.pskModes.includes(1) && clientGroups.some((g) => serverGroups.includes(g));
  if (dhe) return 'psk_dhe_ke';
  return configured === 'psk_ke' && offer.pskModes.includes(0) ? 'psk_ke' : undefined;
}

/**
 * Reads a connection's ClientHello without consuming it: the bytes are put back on the socket
 * (Node's TLS socket picks up buffered data), so the TLS server sees the stream unchanged.
 */
export function peekClientHello(socket: Socket, timeoutMs = 10_000, maxBytes = 16_384): Promise<ClientHelloOffer> {
  return new Promise((resolve, reject) => {
    let seen = Buffer.alloc(0);
    const done = (err: Error | undefined, offer?: ClientHelloOffer) => {
      clearTimeout(timer);
      socket.off('data', onData);
      socket.off('close', onClose);
      socket.pause();
      if (seen.length > 0) socket.unshift(seen);
      if (err) reject(err);
      else resolve(offer!);
    };
    const onData = (chunk: Buffer) => {
      seen = Buffer.concat([seen, chunk]);
      try {
        const message = clientHelloMessage(seen);
        if (message) done(undefined, parseClientHello(message));
        else if (seen.length > maxBytes) done(new ClientHelloError('ClientHello too large'));
      } catch (err) {
        done(err as Error);
      }
    };
    const onClose = () => done(new ClientHelloError('connection closed before its ClientHello'));
    const timer = setTimeout(() => done(new ClientHelloError('no ClientHello in time')), timeoutMs);
    socket.on('data', onData);
    socket.once('close', onClose);
  });
}
