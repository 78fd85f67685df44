import { checkServerIdentity, type PeerCertificate } from 'node:tls';
import type { Logger } from 'pino';
import { Pool } from 'undici';
import { entityFromAltNames } from '../auth/tls-identity.js';
import { QksError } from '../domain/errors.js';
import type {
  CancelMessage,
  ReservationBatch,
  ReservationMessage,
  ReservationResults,
} from '../domain/peer-messages.js';
import type { KeyStore } from '../stores/key-store.js';
import type { PeerChannel } from './key-service.js';
import type { PeerSyncObserver } from './observability/peer-sync.js';

const MAX_BATCH = 64;

interface PendingReservation {
  readonly message: ReservationMessage;
  resolve(): void;
  reject(err: unknown): void;
}

export interface PeerClientOptions {
  readonly peers: ReadonlyArray<{ kmeId: string; url: string }>;
  readonly tls: { key: string | Buffer; cert: string | Buffer; ca: string | Buffer };
  readonly store: KeyStore;
  readonly log: Logger;
  readonly timeoutMs?: number;
  readonly outboxIntervalMs?: number;
  /** Told how each reservation batch went: its round trip, or why the peer did not confirm. */
  readonly observer?: PeerSyncObserver;
}

/**
 * This KME's side of the KME-to-KME channel: mutual TLS with the KME certificates, and a check
 * that the server really is the named peer KME. Cancels of burned keys go through the durable
 * outbox and are retried until the peer confirms them.
 */
export class PeerClient implements PeerChannel {
  readonly #pools = new Map<string, Pool>();
  readonly #opts: PeerClientOptions;
  #timer: NodeJS.Timeout | undefined;
  #flushing: Promise<void> | undefined;
  #closed = false;
  readonly #batches = new Map<string, PendingReservation[]>();

  constructor(opts: PeerClientOptions) {
    this.#opts = opts;
    for (const peer of opts.peers) this.setPeerUrl(peer.kmeId, peer.url);
  }

  /** Points the channel at a peer's address (the demo learns ports only after listening). */
  setPeerUrl(kmeId: string, url: string): void {
    void this.#pools.get(kmeId)?.close();
    const timeout = this.#opts.timeoutMs ?? 5000;
    this.#pools.set(
      kmeId,
      new Pool(url, {
        connections: 16,
        headersTimeout: timeout,
        bodyTimeout: timeout,
        connectTimeout: timeout,
        connect: {
          ...this.#opts.tls,
          checkServerIdentity: (host: string, cert: PeerCertificate) => {
            if (entityFromAltNames(cert.subjectaltname, 'kme') !== kmeId) {
              return new Error(`peer certificate does not belong to KME ${kmeId}`);
            }
            return checkServerIdentity(host, cert);
          },
        },
      }),
    );
  }

  async #post(kmeId: string, path: string, body: unknown, what = 'record the keys'): Promise<unknown> {
    const reply = await this.#request(kmeId, path, 'application/json', JSON.stringify(body), what);
    return JSON.parse(reply.toString('utf8')) as unknown;
  }

  async #request(
    kmeId: string,
    path: string,
    contentType: string,
    body: string | Uint8Array,
    what: string,
  ): Promise<Buffer> {
    const pool = this.#pools.get(kmeId);
    if (!pool) throw new QksError('PEER_KME_UNAVAILABLE', `no address configured for peer KME ${kmeId}`);
    let res;
    try {
      res = await pool.request({ method: 'POST', path, headers: { 'content-type': contentType }, body });
    } catch (err) {
      this.#opts.log.warn({ peer: kmeId, err: (err as Error).message }, 'peer KME unreachable');
      throw new QksError('PEER_KME_UNAVAILABLE', `peer KME ${kmeId} is unreachable; try again later`);
    }
    const reply = Buffer.from(await res.body.arrayBuffer());
    if (res.statusCode !== 200) {
      let reason = `status ${res.statusCode}`;
      try {
        reason = (JSON.parse(reply.toString('utf8')) as { message?: string }).message ?? reason;
      } catch {
        // Not our peer's error body (a proxy's page, say): the status is all we know.
      }
      this.#opts.log.warn({ peer: kmeId, status: res.statusCode, reason }, 'peer KME refused');
      throw new QksError('PEER_KME_UNAVAILABLE', `peer KME ${kmeId} could not ${what}: ${reason}`);
    }
    return reply;
  }

  /**
   * Reservations made in the same turn of the event loop travel together in one request: under
   * load that saves most of the KME-to-KME round trips. Each still succeeds or fails on its own.
   */
  reserve(peerKme: string, message: ReservationMessage): Promise<void> {
    return new Promise((resolve, reject) => {
      let batch = this.#batches.get(peerKme);
      if (!batch || batch.length >= MAX_BATCH) {
        batch = [];
        this.#batches.set(peerKme, batch);
        const sending = batch;
        setImmediate(() => void this.#send(peerKme, sending));
      }
      batch.push({ message, resolve, reject });
    });
  }

  async #send(peerKme: string, batch: PendingReservation[]): Promise<void> {
    if (this.#batches.get(peerKme) === batch) this.#batches.delete(peerKme);
    const observer = this.#opts.observer;
    const started = performance.now();
    try {
      const body: ReservationBatch = { reservations: batch.map((b) => b.message) };
      const { results } = (await this.#post(peerKme, '/kme/v1/reservations', body)) as ReservationResults;
      observer?.synced(peerKme, (performance.now() - started) / 1000);
      batch.forEach((b, i) => {
        const result = results?.[i];
        if (result?.ok) return b.resolve();
        observer?.failed(peerKme, 'refused');
        const reason = result?.message ?? 'no answer';
        this.#opts.log.warn({ peer: peerKme, reason }, 'peer KME refused a reservation');
        b.reject(new QksError('PEER_KME_UNAVAILABLE', `peer KME ${peerKme} could not record the keys: ${reason}`));
      });
    } catch (err) {
      observer?.failed(peerKme, /unreachable/.test((err as Error).message) ? 'unreachable' : 'refused');
      for (const b of batch) b.reject(err);
    }
  }

  /** Starts retrying queued cancels in the background. */
  start(): void {
    const tick = () => {
      void this.flushOutbox()
        .catch((err: unknown) => this.#opts.log.error({ err: (err as Error).message }, 'outbox flush failed'))
        .finally(() => {
          // close() may have come while this flush ran: then the store is gone, do not go on.
          if (this.#closed) return;
          this.#timer = setTimeout(tick, this.#opts.outboxIntervalMs ?? 1000);
          this.#timer.unref();
        });
    };
    tick();
  }

  /** Sends every queued cancel it can; those that fail stay queued. */
  flushOutbox(): Promise<void> {
    this.#flushing ??= (async () => {
      try {
        for (const entry of await this.#opts.store.listOutbox(100)) {
          const message: CancelMessage = { key_IDs: entry.keyIds };
          try {
            await this.#post(entry.peerKme, '/kme/v1/cancellations', message);
            await this.#opts.store.ackOutbox([entry.id]);
          } catch {
            continue;
          }
        }
      } finally {
        this.#flushing = undefined;
      }
    })();
    return this.#flushing;
  }

  async close(): Promise<void> {
    this.#closed = true;
    clearTimeout(this.#timer);
    await this.#flushing?.catch(() => undefined);
    await Promise.all([...this.#pools.values()].map((p) => p.close()));
  }
}
