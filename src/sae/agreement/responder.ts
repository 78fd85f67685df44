import { EventEmitter } from 'node:events';
import type { AddressInfo } from 'node:net';
import { createServer, type Server, type TLSSocket } from 'node:tls';
import { closeRevoked, peerRevoked, readCrl, watchCrl } from '../../pki/crl.js';
import { peerIdentity } from '../../auth/tls-identity.js';
import { KmeError, type KmeClient } from '../kme-client.js';
import { exchangeTimeoutMs } from './exchange-timeout.js';
import { FrameReader, writeFrame, writeFrameFlushed } from './framing.js';
import { AgreementError, keyProof, parseMessage, proofMatches, PROTOCOL_VERSION, type Offer } from './messages.js';
import type { AgreedKeys, SaeTls } from './types.js';
import { ReplayGuard } from './replay-guard.js';

export interface ResponderOptions {
  /** This SAE's ID: offers must be addressed to it. */
  readonly saeId: string;
  /** Master SAEs whose offers are accepted. */
  readonly peers: readonly string[];
  readonly kme: KmeClient;
  readonly tls: SaeTls;
  readonly host?: string;
  readonly port?: number;
  /** How long dec_keys may take before the exchange is refused (default: the key_exchange_timeout preference). */
  readonly timeoutMs?: number;
}

export interface ResponderEvents {
  keys: [AgreedKeys];
  failure: [AgreementError & { peer: string | null }];
}

/**
 * The responder side of the key agreement: accepts offers from known master SAEs over mutual TLS,
 * fetches the offered keys from its own KME, checks the initiator's proof that it holds the same
 * keys, and hands them on once its own proof (the acknowledgement) is on the wire. Keys of an
 * exchange that does not complete are wiped, never used.
 */
export class Responder extends EventEmitter<ResponderEvents> {
  readonly #opts: ResponderOptions;
  readonly #server: Server;
  readonly #replays = new ReplayGuard();
  readonly #sockets = new Set<TLSSocket>();
  #revoked: ReadonlySet<string> = new Set();
  #stopWatching: () => void = () => undefined;

  constructor(opts: ResponderOptions) {
    super();
    this.#opts = opts;
    const { crlFile, ...material } = opts.tls;
    const secure = { ...material, minVersion: 'TLSv1.3' as const };
    const crl = crlFile ? readCrl(crlFile) : undefined;
    this.#revoked = crl?.revoked ?? new Set();
    this.#server = createServer(
      { ...secure, ...(crl ? { crl: crl.pem } : {}), requestCert: true, rejectUnauthorized: true },
      (socket) => void this.#serve(socket),
    );
    this.#server.on('tlsClientError', () => undefined);
    if (crlFile) {
      // A list that cannot be read is skipped: the one before stays in force.
      this.#stopWatching = watchCrl(
        crlFile,
        (next) => {
          this.#server.setSecureContext({ ...secure, crl: next.pem });
          this.#revoked = next.revoked;
          closeRevoked(this.#sockets, next.revoked);
        },
        () => undefined,
      );
    }
  }

  async listen(): Promise<{ host: string; port: number }> {
    await new Promise<void>((resolve, reject) => {
      this.#server.once('error', reject);
      this.#server.listen(this.#opts.port ?? 0, this.#opts.host ?? '127.0.0.1', () => resolve());
    });
    const addr = this.#server.address() as AddressInfo;
    return { host: addr.address, port: addr.port };
  }

  async close(): Promise<void> {
    this.#stopWatching();
    for (const s of this.#sockets) s.destroy();
    await new Promise<void>((resolve) => this.#server.close(() => resolve()));
  }

  async #serve(socket: TLSSocket): Promise<void> {
    // Verified against the list before the latest, during a reload.
    if (peerRevoked(socket, this.#revoked)) return void socket.destroy();
    this.#sockets.add(socket);
    socket.on('close', () => this.#sockets.delete(socket));
    socket.on('error', () => undefined);
    const peer = peerIdentity(socket, 'sae');
    const reader = new FrameReader(socket);
    // Read per connection, so a changed preference applies to the next connection.
    const timeout = await exchangeTimeoutMs(this.#opts.timeoutMs, this.#opts.kme);
    if (!peer || !this.#opts.peers.includes(peer)) {
      this.#refuse(
        socket,
        undefined,
        new AgreementError('wrong_peer', `SAE ${peer ?? '(unknown)'} may not offer keys here`),
        peer,
      );
      socket.end();
      return;
    }
    // One connection carries any number of exchanges, one after the other.
    for (;;) {
      let raw: unknown;
      try {
        raw = await reader.next(24 * 3600_000);
      } catch {
        return; // connection gone
      }
      let offer: Offer | undefined;
      try {
        const msg = parseMessage(raw);
        if (msg.type !== 'offer') throw new AgreementError('bad_message', `expected an offer, got ${msg.type}`);
        offer = msg;
        await this.#exchange(socket, peer, offer, timeout);
      } catch (err) {
        const failure =
          err instanceof AgreementError ? err : new AgreementError('internal', (err as Error).message ?? 'failed');
        this.#refuse(socket, offer?.exchange, failure, peer);
        if (failure.code === 'timeout' || failure.code === 'bad_message') socket.end();
      }
    }
  }

  async #exchange(socket: TLSSocket, peer: string, offer: Offer, timeout: number) {
    if (offer.master !== peer) {
      throw new AgreementError('wrong_peer', `offer names master ${offer.master} but comes from ${peer}`);
    }
    if (offer.slave !== this.#opts.saeId) {
      throw new AgreementError('not_addressed_to_me', `offer is for ${offer.slave}, not ${this.#opts.saeId}`);
    }
    if (!this.#replays.claim(offer.key_IDs)) {
      throw new AgreementError('replay', 'one or more key IDs were offered before');
    }
    const started = performance.now();
    let keys: Buffer[];
    try {
      // The KME refuses keys that were not addressed to this SAE by this master.
      const container = await this.#opts.kme.getKeysWithIds(offer.master, offer.key_IDs);
      const byId = new Map(container.keys.map((k) => [k.key_ID, Buffer.from(k.key, 'base64')]));
      keys = offer.key_IDs.map((id) => byId.get(id)!);
      if (keys.some((k) => k === undefined)) {
        for (const k of byId.values()) k.fill(0);
        throw new AgreementError('kme_refused', 'KME returned other keys');
      }
    } catch (err) {
      if (err instanceof KmeError) throw new AgreementError('kme_refused', `KME refused the keys: ${err.message}`);
      throw err;
    }
    const fetchedMs = performance.now() - started;
    try {
      if (!proofMatches(keyProof('offer', offer, keys), offer.proof)) {
        throw new AgreementError('bad_proof', 'initiator holds different keys');
      }
      // The initiator waits as long for the acknowledgement: later than that, it has given up.
      if (fetchedMs > timeout) {
        throw new AgreementError('timeout', `could not fetch the keys within ${timeout} ms`);
      }
      const ack = { v: PROTOCOL_VERSION, type: 'ack', exchange: offer.exchange, proof: keyProof('ack', offer, keys) };
      await writeFrameFlushed(socket, ack).catch((err: Error) => {
        throw new AgreementError('timeout', `could not acknowledge the exchange: ${err.message}`);
      });
    } catch (err) {
      for (const k of keys) k.fill(0);
      throw err;
    }
    this.emit('keys', {
      exchange: offer.exchange,
      peer,
      keys: offer.key_IDs.map((keyId, i) => ({ keyId, key: keys[i]! })),
      timings: { kmeMs: fetchedMs, totalMs: performance.now() - started },
    });
  }

  #refuse(socket: TLSSocket, exchange: string | undefined, err: AgreementError, peer: string | null): void {
    if (socket.writable) {
      writeFrame(socket, {
        v: PROTOCOL_VERSION,
        type: 'error',
        ...(exchange ? { exchange } : {}),
        code: err.code,
        message: err.message,
      });
    }
    this.emit('failure', Object.assign(err, { peer }));
  }
}
