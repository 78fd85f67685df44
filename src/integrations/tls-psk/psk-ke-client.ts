import { randomBytes } from 'node:crypto';
import { createConnection, type Socket } from 'node:net';
import { Duplex } from 'node:stream';
import { PskKeSchedule, RecordCipher, sha256, SUITES, type Suite, finishedMac } from './tls13-keys.js';

/**
 * A TLS 1.3 client that offers psk_ke and nothing else (RFC 8446): one external PSK, the
 * psk_key_exchange_modes extension naming psk_ke alone, no key_share and no supported_groups. A
 * server can only answer psk_ke or refuse. OpenSSL 3.0 (Node's TLS) cannot make that offer: its
 * ClientHello always lists psk_dhe_ke and carries a key_share, so a server with a group in common
 * would turn psk_ke into psk_dhe_ke. No certificates, no resumption, no early data.
 */
export interface PskKeClientOptions {
  readonly host: string;
  readonly port: number;
  readonly identity: string;
  readonly key: Buffer;
}

const TYPE = { ccs: 20, alert: 21, handshake: 22, data: 23 } as const;
const HS = { serverHello: 2, newSessionTicket: 4, encryptedExtensions: 8, finished: 20, keyUpdate: 24 } as const;
const EXT = { supportedVersions: 43, pskModes: 45, preSharedKey: 41, keyShare: 51 } as const;
const MAX_FRAGMENT = 16_384;
/** ServerHello.random of a HelloRetryRequest (§4.1.3): only sent to ask for a key share. */
const HRR_RANDOM = Buffer.from('cf21ad74e59a6111be1d8c021e65b891c2a211167abb8c5e079e09e2c8a8339c', 'hex');

const u16 = (n: number) => Buffer.from([n >> 8, n & 0xff]);
const u24 = (n: number) => Buffer.from([n >> 16, (n >> 8) & 0xff, n & 0xff]);
const vec16 = (b: Buffer) => Buffer.concat([u16(b.length), b]);
const ext = (type: number, body: Buffer) => Buffer.concat([u16(type), vec16(body)]);
const handshake = (type: number, body: Buffer) => Buffer.concat([Buffer.from([type]), u24(body.length), body]);

export class TlsAlertError extends Error {
  override name = 'TlsAlertError';
}

/** The ClientHello for `identity`, with its binder filled in by `schedule`. */
export function pskKeClientHello(identity: string, schedule: PskKeSchedule): Buffer {
  const id = Buffer.from(identity, 'utf8');
  const identities = vec16(Buffer.concat([vec16(id), Buffer.alloc(4)])); // obfuscated_ticket_age 0 (external PSK)
  const binders = (b: Buffer) => vec16(Buffer.concat([Buffer.from([b.length]), b]));
  const hello = (binder: Buffer) => {
    const extensions = Buffer.concat([
      ext(EXT.supportedVersions, Buffer.from([2, 3, 4])),
      ext(EXT.pskModes, Buffer.from([1, 0])), // psk_ke only
      ext(EXT.preSharedKey, Buffer.concat([identities, binders(binder)])), // must be last
    ]);
    const suites = Buffer.concat(Object.keys(SUITES).map((s) => u16(Number(s))));
    return handshake(
      1,
      Buffer.concat([
        Buffer.from([3, 3]),
        randomBytes(32),
        Buffer.from([0]),
        vec16(suites),
        Buffer.from([1, 0]),
        vec16(extensions),
      ]),
    );
  };
  const placeholder = hello(Buffer.alloc(32));
  const truncated = placeholder.subarray(0, placeholder.length - binders(Buffer.alloc(32)).length);
  const binder = schedule.binder(sha256(truncated));
  return Buffer.concat([truncated, binders(binder)]);
}

/** The ServerHello's cipher suite; throws unless it is a psk_ke answer to our one identity. */
export function checkServerHello(body: Buffer): Suite {
  let at = 2; // legacy_version
  const random = body.subarray(at, (at += 32));
  if (random.equals(HRR_RANDOM))
    throw new Error('the server asked for a key share (HelloRetryRequest): it refuses psk_ke');
  at += 1 + body[at]!; // legacy_session_id_echo (we sent none)
  const suite = body.readUInt16BE(at);
  at += 3; // suite, compression
  if (!(suite in SUITES)) throw new Error(`the server chose cipher suite 0x${suite.toString(16)}, not offered`);
  const end = at + 2 + body.readUInt16BE(at);
  const seen = new Map<number, Buffer>();
  for (at += 2; at < end;) {
    const type = body.readUInt16BE(at);
    const len = body.readUInt16BE(at + 2);
    seen.set(type, body.subarray(at + 4, at + 4 + len));
    at += 4 + len;
  }
  if (seen.get(EXT.supportedVersions)?.readUInt16BE(0) !== 0x0304) throw new Error('the server did not choose TLS 1.3');
  if (seen.has(EXT.keyShare)) throw new Error('the server sent a key_share to a psk_ke-only offer');
  if (seen.get(EXT.preSharedKey)?.readUInt16BE(0) !== 0) throw new Error('the server did not accept the PSK');
  return suite as Suite;
}

/**
 * A TLS connection as a duplex stream of plaintext: 'secureConnect' once the handshake is done,
 * 'error' if it fails (a server alert, a Finished that does not verify, an answer that is not psk_ke).
 */
export class PskKeSocket extends Duplex {
  readonly #raw: Socket;
  readonly #schedule: PskKeSchedule;
  #transcript: Buffer[] = [];
  #incoming = Buffer.alloc(0);
  #handshakeBytes = Buffer.alloc(0);
  #reader: RecordCipher | undefined;
  #writer: RecordCipher | undefined;
  #clientHandshakeSecret: Buffer | undefined;
  #serverHandshakeSecret: Buffer | undefined;
  #suite: Suite | undefined;
  #established = false;
  #pending: Array<() => void> = [];

  constructor(opts: PskKeClientOptions) {
    super({ allowHalfOpen: true });
    this.#schedule = new PskKeSchedule(opts.key);
    this.#raw = createConnection({ host: opts.host, port: opts.port, allowHalfOpen: true });
    this.#raw.once('connect', () => {
      const hello = pskKeClientHello(opts.identity, this.#schedule);
      this.#transcript.push(hello);
      this.#raw.write(Buffer.concat([Buffer.from([TYPE.handshake, 3, 1]), u16(hello.length), hello]));
    });
    this.#raw.on('data', (d: Buffer) => this.#received(d));
    this.#raw.on('end', () => this.push(null)); // a peer that closes without close_notify
    this.#raw.on('error', (e) => this.destroy(e));
    this.#raw.on('close', () => {
      if (!this.#established) this.destroy(new Error('the server closed the connection during the handshake'));
    });
  }

  #received(data: Buffer): void {
    this.#incoming = Buffer.concat([this.#incoming, data]);
    try {
      while (this.#incoming.length >= 5) {
        const len = this.#incoming.readUInt16BE(3);
        if (this.#incoming.length < 5 + len) break;
        const header = this.#incoming.subarray(0, 5);
        const body = this.#incoming.subarray(5, 5 + len);
        this.#incoming = this.#incoming.subarray(5 + len);
        this.#record(header, body);
        if (this.destroyed) return;
      }
    } catch (err) {
      this.destroy(err as Error);
    }
  }

  #record(header: Buffer, body: Buffer): void {
    const outer = header[0]!;
    if (outer === TYPE.ccs) return; // middlebox compatibility: ignored
    if (!this.#reader) {
      if (outer === TYPE.alert) throw new TlsAlertError(`the server refused the handshake (alert ${body[1]})`);
      if (outer !== TYPE.handshake) throw new Error(`unexpected record type ${outer} before ServerHello`);
      return this.#handshake(body);
    }
    if (outer !== TYPE.data) throw new Error(`unexpected plaintext record type ${outer}`);
    const { type, content } = this.#reader.open(header, body);
    if (type === TYPE.data) {
      if (!this.#established) throw new Error('application data before the handshake finished');
      if (!this.push(content)) this.#raw.pause();
    } else if (type === TYPE.handshake) this.#handshake(content);
    else if (type === TYPE.alert) {
      if (content[1] === 0)
        this.push(null); // close_notify: the server is done sending
      else throw new TlsAlertError(`the server sent alert ${content[1]}`);
    } else throw new Error(`unexpected record content type ${type}`);
  }

  #handshake(bytes: Buffer): void {
    this.#handshakeBytes = Buffer.concat([this.#handshakeBytes, bytes]);
    while (this.#handshakeBytes.length >= 4) {
      const len = this.#handshakeBytes.readUIntBE(1, 3);
      if (this.#handshakeBytes.length < 4 + len) return;
      const message = this.#handshakeBytes.subarray(0, 4 + len);
      this.#handshakeBytes = this.#handshakeBytes.subarray(4 + len);
      this.#message(message[0]!, message, message.subarray(4));
    }
  }

  #message(type: number, message: Buffer, body: Buffer): void {
    if (this.#established) {
      if (type === HS.newSessionTicket) return; // no resumption: a ticket is not kept
      if (type !== HS.keyUpdate) throw new Error(`unexpected handshake message ${type} after the handshake`);
      this.#reader = this.#reader!.next();
      if (body[0] === 1) {
        this.#raw.write(this.#writer!.seal(TYPE.handshake, handshake(HS.keyUpdate, Buffer.from([0]))));
        this.#writer = this.#writer!.next();
      }
      return;
    }
    if (!this.#suite) {
      if (type !== HS.serverHello) throw new Error(`expected ServerHello, got handshake message ${type}`);
      this.#suite = checkServerHello(body);
      this.#transcript.push(message);
      const secrets = this.#schedule.handshakeSecrets(sha256(...this.#transcript));
      [this.#clientHandshakeSecret, this.#serverHandshakeSecret] = [secrets.client, secrets.server];
      this.#reader = new RecordCipher(secrets.server, this.#suite);
      return;
    }
    if (type === HS.encryptedExtensions) return void this.#transcript.push(message);
    if (type !== HS.finished) throw new Error(`unexpected handshake message ${type} in a PSK handshake`);
    const expected = finishedMac(this.#serverHandshakeSecret!, sha256(...this.#transcript));
    if (!expected.equals(body)) throw new Error('the server Finished does not verify (another key)');
    this.#transcript.push(message);
    const transcriptHash = sha256(...this.#transcript);
    const app = this.#schedule.applicationSecrets(transcriptHash);
    const finished = handshake(HS.finished, finishedMac(this.#clientHandshakeSecret!, transcriptHash));
    this.#raw.write(new RecordCipher(this.#clientHandshakeSecret!, this.#suite).seal(TYPE.handshake, finished));
    this.#reader = new RecordCipher(app.server, this.#suite);
    this.#writer = new RecordCipher(app.client, this.#suite);
    this.#transcript = [];
    this.#established = true;
    this.emit('secureConnect');
    for (const go of this.#pending.splice(0)) go();
  }

  override _write(chunk: Buffer, _enc: BufferEncoding, done: (err?: Error | null) => void): void {
    if (!this.#established) return void this.#pending.push(() => this._write(chunk, _enc, done));
    const records: Buffer[] = [];
    for (let at = 0; at < chunk.length; at += MAX_FRAGMENT) {
      records.push(this.#writer!.seal(TYPE.data, chunk.subarray(at, at + MAX_FRAGMENT)));
    }
    if (this.#raw.write(Buffer.concat(records))) done();
    else this.#raw.once('drain', () => done());
  }

  override _final(done: (err?: Error | null) => void): void {
    if (!this.#established) return void this.#pending.push(() => this._final(done));
    // close_notify, then FIN; reading goes on (TLS 1.3 half-close).
    this.#raw.end(this.#writer!.seal(TYPE.alert, Buffer.from([1, 0])), () => done());
  }

  override _read(): void {
    this.#raw.resume();
  }

  override _destroy(err: Error | null, done: (err?: Error | null) => void): void {
    this.#raw.destroy();
    done(err);
  }
}
