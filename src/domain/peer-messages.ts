import { badRequest } from './errors.js';
import { requireEntityId, requireKeyId } from './ids.js';

/**
 * The KME-to-KME messages. A KME that cut keys from its share of a link tells the peer which
 * blocks each key used, for which master and slaves; the peer takes the same blocks from its copy.
 * Key bytes never travel between KMEs.
 */
export interface ReservedKey {
  readonly key_ID: string;
  readonly size: number;
  readonly blocks: readonly number[];
}

export interface ReservationMessage {
  readonly link_ID: string;
  readonly master_SAE_ID: string;
  readonly slave_SAE_IDs: readonly string[];
  readonly keys: readonly ReservedKey[];
}

/** Reservations travel in batches; each is taken or refused on its own, in order. */
export interface ReservationBatch {
  readonly reservations: readonly ReservationMessage[];
}

export interface ReservationResults {
  readonly results: ReadonlyArray<{ readonly ok: true } | { readonly ok: false; readonly message: string }>;
}

export interface CancelMessage {
  readonly key_IDs: readonly string[];
}

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

const MAX_KEYS_PER_MESSAGE = 4096;
const MAX_RESERVATIONS = 64;

export function parseReservation(body: unknown): ReservationMessage {
  if (!isObject(body)) throw badRequest('reservation must be an object');
  const keys = body['keys'];
  const slaves = body['slave_SAE_IDs'];
  if (!Array.isArray(keys) || keys.length === 0 || keys.length > MAX_KEYS_PER_MESSAGE) {
    throw badRequest('keys must be a non-empty array');
  }
  if (!Array.isArray(slaves) || slaves.length === 0) throw badRequest('slave_SAE_IDs must be a non-empty array');
  return {
    link_ID: requireEntityId(body['link_ID'], 'link_ID'),
    master_SAE_ID: requireEntityId(body['master_SAE_ID'], 'master_SAE_ID'),
    slave_SAE_IDs: slaves.map((s) => requireEntityId(s, 'slave_SAE_IDs entry')),
    keys: keys.map((k): ReservedKey => {
      if (!isObject(k)) throw badRequest('each key must be an object');
      const blocks = k['blocks'];
      if (!Array.isArray(blocks) || blocks.length === 0 || !blocks.every((b) => Number.isSafeInteger(b) && b >= 0)) {
        throw badRequest('blocks must be a non-empty array of block numbers');
      }
      if (!Number.isSafeInteger(k['size'])) throw badRequest('size must be an integer');
      return { key_ID: requireKeyId(k['key_ID']), size: k['size'] as number, blocks: blocks as number[] };
    }),
  };
}

export function parseReservationBatch(body: unknown): ReservationBatch {
  if (!isObject(body) || !Array.isArray(body['reservations'])) throw badRequest('reservations must be an array');
  const list = body['reservations'];
  if (list.length === 0 || list.length > MAX_RESERVATIONS) {
    throw badRequest(`a batch holds 1 to ${MAX_RESERVATIONS} reservations`);
  }
  return { reservations: list.map(parseReservation) };
}

export function parseCancel(body: unknown): CancelMessage {
  if (!isObject(body) || !Array.isArray(body['key_IDs'])) throw badRequest('key_IDs must be an array');
  if (body['key_IDs'].length > MAX_KEYS_PER_MESSAGE) throw badRequest('too many key_IDs');
  return { key_IDs: body['key_IDs'].map((id) => requireKeyId(id)) };
}
