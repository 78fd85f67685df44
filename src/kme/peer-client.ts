import type { Logger } from 'pino';
import { QksError } from '../domain/errors.js';
import type {
  CancelMessage,
  ReservationAnswer,
  ReservationBatch,
  ReservationMessage,
  ReservationResults,
} from '../domain/peer-messages.js';
import type { KeyStore } from '../stores/key-store.js';
import type { PeerChannel } from './key-service.js';
import type { PeerSyncObserver } from './observability/peer-sync.js';
import { parseReservationAnswer } from '../domain/peer-messages.js';
import { PeerBreaker } from './peer-breaker.js';
import { CANCELLATIONS_CHANNEL, PING_CHANNEL, RESERVATIONS_CHANNEL } from './peer-messages-service.js';
import type { PeerStreams } from './peer-stream/client.js';
import { PeerStreamRefusal, RequestNotSent } from './peer-stream/connection.js';

const MAX_BATCH = 64;

interface PendingReservation {
  readonly message: ReservationMessage;
  resolve(answer: ReservationAnswer): void;
  reject(err: unknown): void;
}

export interface PeerClientOptions {
  /** The framed streams to the peer KMEs (mutual TLS with the KME certificates). */
  readonly streams: PeerStreams;
  readonly store: KeyStore;
  readonly log: Logger;
  readonly timeoutMs?: number;
  readonly outboxIntervalMs?: number;
  /** While a peer is down, how often an enc_keys may probe it (ms); those in between fail at once. */
  readonly probeIntervalMs?: number;
  /** Told how each reservation batch went: its round trip, or why the peer did not confirm. */
  readonly observer?: PeerSyncObserver;
}

/**
 * This KME's side of key synchronisation, over the peer stream (its client checks that the server
 * really is the named peer KME). Cancels of burned keys go through the durable outbox and are
 * retried until the peer confirms them.
 */
export class PeerClient implements PeerChannel {
  readonly #opts: PeerClientOptions;
  #timer: NodeJS.Timeout | undefined;
  #flushing: Promise<void> | undefined;
  #closed = false;
  /** Bumped by each start and pause: a loop of an earlier start ends. */
  #outboxRun = 0;
  readonly #batches = new Map<string, PendingReservation[]>();
  readonly #breaker: PeerBreaker;

  constructor(opts: PeerClientOptions) {
    this.#opts = opts;
    this.#breaker = new PeerBreaker({
      probe: (peer) => this.#probe(peer),
      ...(opts.probeIntervalMs !== undefined ? { retryAfterMs: opts.probeIntervalMs } : {}),
    });
  }

  /** Any answer, even a refusal (a peer without the ping channel), shows the peer is there. */
  async #probe(peerKme: string): Promise<boolean> {
    try {
      await this.#opts.streams.request(peerKme, PING_CHANNEL, Buffer.from('{}'), this.#opts.timeoutMs);
      return true;
    } catch (err) {
      return err instanceof PeerStreamRefusal;
    }
  }

  ensureReachable(peerKme: string): Promise<void> {
    return this.#breaker.ensureUp(peerKme);
  }

  async #post(kmeId: string, channel: string, body: unknown, what = 'record the keys'): Promise<unknown> {
    try {
      const reply = await this.#opts.streams.request(
        kmeId,
        channel,
        Buffer.from(JSON.stringify(body)),
        this.#opts.timeoutMs,
      );
      this.#breaker.answered(kmeId);
      return JSON.parse(reply.toString('utf8')) as unknown;
    } catch (err) {
      if (err instanceof PeerStreamRefusal) {
        this.#breaker.answered(kmeId);
        this.#opts.log.warn({ peer: kmeId, code: err.peerCode, reason: err.message }, 'peer KME refused');
        throw new QksError('PEER_KME_UNAVAILABLE', `peer KME ${kmeId} could not ${what}: ${err.message}`);
      }
      if (err instanceof SyntaxError) {
        this.#opts.log.warn({ peer: kmeId }, 'peer KME answered something other than JSON');
        throw new QksError('PEER_KME_UNAVAILABLE', `peer KME ${kmeId} could not ${what}: unreadable answer`);
      }
      this.#opts.log.warn({ peer: kmeId, err: (err as Error).message }, 'peer KME unreachable');
      this.#breaker.failed(kmeId);
      const message = `peer KME ${kmeId} is unreachable; try again later`;
      // Whether the request may have reached the peer decides whether its material can be reused.
      throw err instanceof RequestNotSent ? new RequestNotSent(message) : new QksError('PEER_KME_UNAVAILABLE', message);
    }
  }

  /**
   * Reservations made in the same turn of the event loop travel together in one request: under
   * load that saves most of the KME-to-KME round trips. Each still succeeds or fails on its own.
   */
  reserve(peerKme: string, message: ReservationMessage): Promise<ReservationAnswer> {
    // Known down since the caller looked: refused here, so certainly not sent.
    if (this.#breaker.isDown(peerKme)) return Promise.reject(this.#breaker.refusal(peerKme));
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
      const { results } = (await this.#post(peerKme, RESERVATIONS_CHANNEL, body)) as ReservationResults;
      observer?.synced(peerKme, (performance.now() - started) / 1000);
      batch.forEach((b, i) => {
        const result = results?.[i];
        if (result?.ok) {
          // A relay hop's masks are checked by the caller, who holds the MAC key.
          try {
            return b.resolve(parseReservationAnswer(result));
          } catch (err) {
            const why = (err as Error).message;
            return b.reject(new QksError('PEER_KME_UNAVAILABLE', `peer KME ${peerKme} answered a relay badly: ${why}`));
          }
        }
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
    const run = ++this.#outboxRun;
    const tick = () => {
      void this.flushOutbox()
        .catch((err: unknown) => this.#opts.log.error({ err: (err as Error).message }, 'outbox flush failed'))
        .finally(() => {
          // close() may have come while this flush ran: then the store is gone, do not go on.
          if (this.#closed || run !== this.#outboxRun) return;
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
            await this.#post(entry.peerKme, CANCELLATIONS_CHANNEL, message, 'cancel the keys');
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

  /** Stops retrying queued cancels (another replica drains the outbox now); start() resumes. */
  async pause(): Promise<void> {
    this.#outboxRun++;
    clearTimeout(this.#timer);
    await this.#flushing?.catch(() => undefined);
  }

  async close(): Promise<void> {
    this.#closed = true;
    clearTimeout(this.#timer);
    await this.#flushing?.catch(() => undefined);
  }
}
