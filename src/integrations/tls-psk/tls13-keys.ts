import { createCipheriv, createDecipheriv, createHash, createHmac } from 'node:crypto';

/**
 * The TLS 1.3 key schedule (RFC 8446 §7.1) for an external PSK with no (EC)DHE, and record
 * protection (§5.2), for the cipher suites QKS offers: both use SHA-256.
 */
export const SUITES = {
  0x1301: { cipher: 'aes-128-gcm', keyLength: 16 },
  0x1303: { cipher: 'chacha20-poly1305', keyLength: 32 },
} as const;
export type Suite = keyof typeof SUITES;

const HASH_LENGTH = 32;
const ZEROS = Buffer.alloc(HASH_LENGTH);

export const sha256 = (...parts: Buffer[]): Buffer => {
  const h = createHash('sha256');
  for (const p of parts) h.update(p);
  return h.digest();
};
const hmac = (key: Buffer, data: Buffer): Buffer => createHmac('sha256', key).update(data).digest();
const extract = (salt: Buffer, ikm: Buffer): Buffer => hmac(salt, ikm);

/** HKDF-Expand-Label; every length used here fits one SHA-256 block. */
export function expandLabel(secret: Buffer, label: string, context: Buffer, length: number): Buffer {
  const full = Buffer.from(`tls13 ${label}`, 'latin1');
  const info = Buffer.concat([
    Buffer.from([length >> 8, length & 0xff, full.length]),
    full,
    Buffer.from([context.length]),
    context,
  ]);
  return hmac(secret, Buffer.concat([info, Buffer.from([1])])).subarray(0, length);
}

const deriveSecret = (secret: Buffer, label: string, transcriptHash: Buffer) =>
  expandLabel(secret, label, transcriptHash, HASH_LENGTH);

/** Finished's verify_data (and a PSK binder): an HMAC of the transcript hash. */
export const finishedMac = (baseKey: Buffer, transcriptHash: Buffer): Buffer =>
  hmac(expandLabel(baseKey, 'finished', Buffer.alloc(0), HASH_LENGTH), transcriptHash);

/** The secrets of a psk_ke handshake: the PSK is the only input, the handshake secret has no DHE. */
export class PskKeSchedule {
  readonly #early: Buffer;
  #handshake: Buffer | undefined;

  constructor(psk: Buffer) {
    this.#early = extract(ZEROS, psk);
  }

  /** The binder of an external PSK over the ClientHello truncated before its binders. */
  binder(truncatedHelloHash: Buffer): Buffer {
    return finishedMac(deriveSecret(this.#early, 'ext binder', sha256()), truncatedHelloHash);
  }

  /** Client and server handshake traffic secrets, given Hash(ClientHello..ServerHello). */
  handshakeSecrets(helloHash: Buffer): { client: Buffer; server: Buffer } {
    this.#handshake = extract(deriveSecret(this.#early, 'derived', sha256()), ZEROS);
    return {
      client: deriveSecret(this.#handshake, 'c hs traffic', helloHash),
      server: deriveSecret(this.#handshake, 's hs traffic', helloHash),
    };
  }

  /** Client and server application traffic secrets, given Hash(ClientHello..server Finished). */
  applicationSecrets(transcriptHash: Buffer): { client: Buffer; server: Buffer } {
    if (!this.#handshake) throw new Error('handshake secrets first');
    const master = extract(deriveSecret(this.#handshake, 'derived', sha256()), ZEROS);
    return {
      client: deriveSecret(master, 'c ap traffic', transcriptHash),
      server: deriveSecret(master, 's ap traffic', transcriptHash),
    };
  }
}

/** One direction's record protection under one traffic secret (§5.2, §5.3). */
export class RecordCipher {
  readonly #key: Buffer;
  readonly #iv: Buffer;
  readonly #cipher: string;
  #seq = 0n;

  constructor(
    readonly secret: Buffer,
    readonly suite: Suite,
  ) {
    const { cipher, keyLength } = SUITES[suite];
    this.#cipher = cipher;
    this.#key = expandLabel(secret, 'key', Buffer.alloc(0), keyLength);
    this.#iv = expandLabel(secret, 'iv', Buffer.alloc(0), 12);
  }

  /** The secret after a KeyUpdate. */
  next(): RecordCipher {
    return new RecordCipher(expandLabel(this.secret, 'traffic upd', Buffer.alloc(0), HASH_LENGTH), this.suite);
  }

  #nonce(): Buffer {
    const nonce = Buffer.from(this.#iv);
    const seq = Buffer.alloc(8);
    seq.writeBigUInt64BE(this.#seq++);
    for (let i = 0; i < 8; i++) nonce[4 + i]! ^= seq[i]!;
    return nonce;
  }

  /** A TLSCiphertext record carrying `content` of inner type `type`. */
  seal(type: number, content: Buffer): Buffer {
    const inner = Buffer.concat([content, Buffer.from([type])]);
    const header = Buffer.from([23, 3, 3, (inner.length + 16) >> 8, (inner.length + 16) & 0xff]);
    const c = createCipheriv(this.#cipher as 'aes-128-gcm', this.#key, this.#nonce(), { authTagLength: 16 });
    c.setAAD(header);
    return Buffer.concat([header, c.update(inner), c.final(), c.getAuthTag()]);
  }

  /** The inner type and content of a record (`header` its five bytes); throws if it does not verify. */
  open(header: Buffer, body: Buffer): { type: number; content: Buffer } {
    if (body.length < 17) throw new Error('record too short');
    const d = createDecipheriv(this.#cipher as 'aes-128-gcm', this.#key, this.#nonce(), { authTagLength: 16 });
    d.setAAD(header);
    d.setAuthTag(body.subarray(body.length - 16));
    const inner = Buffer.concat([d.update(body.subarray(0, body.length - 16)), d.final()]);
    let end = inner.length;
    while (end > 0 && inner[end - 1] === 0) end--; // padding
    if (end === 0) throw new Error('record with no content type');
    return { type: inner[end - 1]!, content: inner.subarray(0, end - 1) };
  }
}
