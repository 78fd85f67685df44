import { randomUUID } from 'node:crypto';
import { connect, type PeerCertificate, type TLSSocket } from 'node:tls';
import { entityFromAltNames } from '../../auth/tls-identity.js';
import { peerRevoked, readCrl, watchCrl, type CrlState } from '../../pki/crl.js';
import { KmeError, type KmeClient } from '../kme-client.js';
import { exchangeTimeoutMs } from './exchange-timeout.js';
import { FrameReader, writeFrame } from './framing.js';
import { AgreementError, keyProof, parseMessage, proofMatches, PROTOCOL_VERSION, type OfferTerms } from './messages.js';
import type { AgreedKeys, SaeTls } from './types.js';

export interface InitiatorOptions {
  readonly saeId: string;
  /** The responder SAE: its certificate must name it. */
  readonly peerSaeId: string;
  readonly peer: { readonly host: string; readonly port: number };
  readonly kme: KmeClient;
  readonly tls: SaeTls;
  /** How long to wait for each reply (default: the key_exchange_timeout preference at the KME). */
  readonly timeoutMs?: number;
  /** While the responder is not up yet: how long to keep trying to connect. */
  readonly connectWithinMs?: number;
}

/**
 * The initiator side of the key agreement: connects to the responder first (no keys are taken
 * while the peer is unreachable), gets keys from its KME, offers their IDs with its proof of the
 * keys, and uses them once the responder's acknowledgement proves it holds the same keys. A failed
 * exchange wipes its keys.
 */
export class Initiator {
  readonly #opts: InitiatorOptions;
  #socket: TLSSocket | undefined;
  #reader: FrameReader | undefined;
  #timeoutMs = 30_000;
  #crl: CrlState | undefined;
  #stopWatching: (() => void) | undefined;

  constructor(opts: InitiatorOptions) {
    this.#opts = opts;
  }

  /** The revocation list in force, watched from the first connection on (see SaeTls.crlFile). */
  #currentCrl(): CrlState | undefined {
    const file = this.#opts.tls.crlFile;
    if (!file) return undefined;
    if (!this.#stopWatching) {
      this.#crl = readCrl(file);
      // A list that cannot be read is skipped: the one before stays in force.
      this.#stopWatching = watchCrl(
        file,
        (crl) => {
          this.#crl = crl;
          if (this.#socket && peerRevoked(this.#socket, crl.revoked)) this.#drop();
        },
        () => undefined,
      );
    }
    return this.#crl;
  }

  async #connection(): Promise<{ socket: TLSSocket; reader: FrameReader }> {
    if (this.#socket && !this.#socket.destroyed && this.#reader) return { socket: this.#socket, reader: this.#reader };
    const deadline = Date.now() + (this.#opts.connectWithinMs ?? 10_000);
    for (let attempt = 0; ; attempt++) {
      try {
        const socket = await this.#connectOnce();
        this.#timeoutMs = await exchangeTimeoutMs(this.#opts.timeoutMs, this.#opts.kme);
        this.#socket = socket;
        this.#reader = new FrameReader(socket);
        return { socket, reader: this.#reader };
      } catch (err) {
        const wait = Math.min(1000, 50 * 2 ** attempt);
        if (Date.now() + wait > deadline) {
          throw new AgreementError(
            'timeout',
            `cannot reach responder ${this.#opts.peerSaeId}: ${(err as Error).message}`,
          );
        }
        await new Promise((r) => setTimeout(r, wait));
      }
    }
  }

  #connectOnce(): Promise<TLSSocket> {
    const { peer, peerSaeId } = this.#opts;
    const { ca, cert, key } = this.#opts.tls;
    const crl = this.#currentCrl();
    return new Promise((resolve, reject) => {
      const socket = connect({
        host: peer.host,
        port: peer.port,
        ca,
        cert,
        key,
        ...(crl ? { crl: crl.pem } : {}),
        minVersion: 'TLSv1.3',
        // SAE certificates name SAEs, not hosts: the peer is checked by its SAE identity.
        checkServerIdentity: (_host: string, cert: PeerCertificate) =>
          entityFromAltNames(cert.subjectaltname, 'sae') === peerSaeId
            ? undefined
            : new Error(`responder certificate does not name SAE ${peerSaeId}`),
      });
      socket.setNoDelay(true);
      socket.once('secureConnect', () => {
        // A list that came during the handshake names this responder.
        if (peerRevoked(socket, this.#crl?.revoked ?? new Set())) {
          socket.destroy();
          return reject(new Error(`responder ${peerSaeId}'s certificate is revoked`));
        }
        socket.off('error', reject);
        socket.on('error', () => undefined);
        resolve(socket);
      });
      socket.once('error', reject);
    });
  }

  /** Runs one agreement of `number` keys of `size` bits (the KME's default when omitted). */
  async agree(number = 1, size?: number): Promise<AgreedKeys> {
    const t0 = performance.now();
    const { socket, reader } = await this.#connection();
    const t1 = performance.now();
    let container;
    try {
      container = await this.#opts.kme.getKeys(this.#opts.peerSaeId, { number, ...(size ? { size } : {}) });
    } catch (err) {
      if (err instanceof KmeError) throw new AgreementError('kme_refused', `KME refused: ${err.message}`);
      throw err;
    }
    const t2 = performance.now();
    const keys = container.keys.map((k) => Buffer.from(k.key, 'base64'));
    const terms: OfferTerms = {
      exchange: randomUUID(),
      master: this.#opts.saeId,
      slave: this.#opts.peerSaeId,
      key_IDs: container.keys.map((k) => k.key_ID),
    };
    try {
      writeFrame(socket, { v: PROTOCOL_VERSION, type: 'offer', ...terms, proof: keyProof('offer', terms, keys) });
      // Only the responder's proof shows it holds and kept the keys: without it they are never used here.
      const reply = await this.#reply(reader);
      if (reply.type === 'error') throw new AgreementError(reply.code, `responder refused: ${reply.message}`);
      if (reply.type !== 'ack' || reply.exchange !== terms.exchange) {
        throw new AgreementError('bad_message', 'expected the acknowledgement of this exchange');
      }
      if (!proofMatches(keyProof('ack', terms, keys), reply.proof)) {
        throw new AgreementError('bad_proof', 'responder holds different keys');
      }
    } catch (err) {
      for (const k of keys) k.fill(0);
      this.#drop();
      throw err;
    }
    const t3 = performance.now();
    return {
      exchange: terms.exchange,
      peer: this.#opts.peerSaeId,
      keys: terms.key_IDs.map((keyId, i) => ({ keyId, key: keys[i]! })),
      timings: { connectMs: t1 - t0, kmeMs: t2 - t1, exchangeMs: t3 - t2, totalMs: t3 - t0 },
    };
  }

  async #reply(reader: FrameReader) {
    try {
      return parseMessage(await reader.next(this.#timeoutMs));
    } catch (err) {
      if (err instanceof AgreementError) throw err;
      throw new AgreementError('timeout', `responder did not acknowledge: ${(err as Error).message}`);
    }
  }

  #drop(): void {
    this.#socket?.destroy();
    this.#socket = undefined;
    this.#reader = undefined;
  }

  close(): void {
    this.#stopWatching?.();
    this.#socket?.end();
    this.#drop();
  }
}
