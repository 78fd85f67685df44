import type { Logger } from 'pino';
import { badRequest, QksError } from '../domain/errors.js';
import { parseCancel, parseReservationBatch, type ReservationResults } from '../domain/peer-messages.js';
import type { KeyService } from './key-service.js';
import type { StreamHandler } from './peer-stream/connection.js';

/** What is logged here: a request's logger (HTTP) or the KME's (stream). */
type SyncLog = Pick<Logger, 'warn' | 'info'>;

/** The peer-stream channels of key synchronisation (docs/kme-channel.md). */
export const RESERVATIONS_CHANNEL = 'kme/reservations';
export const CANCELLATIONS_CHANNEL = 'kme/cancellations';
/** Answers anything with `{}`: how a KME finds out that a peer it saw go down is back. */
export const PING_CHANNEL = 'kme/ping';

/**
 * A batch of the peer's reservations: started together (in order), so that the store commits the
 * whole batch at once; each still succeeds or fails on its own.
 */
export async function acceptReservations(
  keys: KeyService,
  peerKme: string,
  body: unknown,
  log: SyncLog,
): Promise<ReservationResults> {
  const results = await Promise.all(
    parseReservationBatch(body).reservations.map(async (reservation) => {
      try {
        const answer = await keys.acceptReservation(peerKme, reservation);
        return { ok: true as const, ...answer };
      } catch (err) {
        if (!(err instanceof QksError)) throw err;
        log.warn({ peer: peerKme, message: err.message }, 'reservation refused');
        return { ok: false as const, message: err.message };
      }
    }),
  );
  return { results };
}

export async function acceptCancellations(
  keys: KeyService,
  peerKme: string,
  body: unknown,
  log: SyncLog,
): Promise<{ ok: true; removed: number }> {
  const removed = await keys.acceptCancel(peerKme, parseCancel(body).key_IDs);
  log.info({ peer: peerKme, removed }, 'peer cancelled burned keys');
  return { ok: true, removed };
}

const json = (payload: Buffer): unknown => {
  try {
    return JSON.parse(payload.toString('utf8')) as unknown;
  } catch {
    throw badRequest('the message is not valid JSON');
  }
};

/** The same two operations as JSON requests on the peer stream. */
export function keySyncHandlers(keys: KeyService, log: Logger): Map<string, StreamHandler> {
  const answer = (result: unknown) => Buffer.from(JSON.stringify(result));
  return new Map<string, StreamHandler>([
    [RESERVATIONS_CHANNEL, async (p, peer) => answer(await acceptReservations(keys, peer, json(p), log))],
    [CANCELLATIONS_CHANNEL, async (p, peer) => answer(await acceptCancellations(keys, peer, json(p), log))],
    [PING_CHANNEL, () => answer({})],
  ]);
}
