import { badRequest } from './errors.js';
import { requireEntityId, requireKeyId } from './ids.js';
import type { Branch } from './multicast.js';

/**
 * The KME-to-KME messages. A KME that cut keys from its share of a link tells the peer which
 * blocks each key used, for which master and slaves; the peer takes the same blocks from its copy.
 * Key bytes never travel between KMEs.
 */
export interface ReservedKey {
  readonly key_ID: string;
  readonly size: number;
  readonly blocks: readonly number[];
  /** Sent forward on a multicast branch: the key XOR these blocks, base64 (none: the blocks are the key). */
  readonly mask?: string;
}

export interface ReservationMessage {
  readonly link_ID: string;
  readonly master_SAE_ID: string;
  readonly slave_SAE_IDs: readonly string[];
  readonly keys: readonly ReservedKey[];
  /**
   * A key between sites without a common link (docs/network.md): the path of KMEs from the
   * master's to the slaves', and, on every hop but the last, the blocks of this link that key the
   * hop's MAC. The receiver answers with each key's mask (the key XOR this hop's blocks).
   */
  readonly relay?: RelayRoute;
}

export interface RelayRoute {
  readonly path: readonly string[];
  readonly mac_blocks?: readonly number[];
  /**
   * A multicast branch (docs/network.md): the path ends at the receiver, which keeps the keys for
   * `slaves` (its own) and sends them on to `children`. The keys travel forward: with masks under
   * `tag`, a one-time MAC keyed with `mac_blocks`, except where the blocks themselves are the keys.
   */
  readonly tree?: Omit<Branch, 'kme'>;
  /** base64 Poly1305 tag over the keys' masks (domain/relay-mac.ts). */
  readonly tag?: string;
}

/** A relay hop's answer for one key: the relayed key XOR the blocks this hop's reservation named. */
export interface KeyMask {
  readonly key_ID: string;
  /** base64 */
  readonly mask: string;
}

export interface ReservationAnswer {
  readonly masks?: readonly KeyMask[];
  /** base64 Poly1305 tag over the masks, keyed with the hop's MAC blocks (domain/relay-mac.ts). */
  readonly tag?: string;
}

/** Reservations travel in batches; each is taken or refused on its own, in order. */
export interface ReservationBatch {
  readonly reservations: readonly ReservationMessage[];
}

export interface ReservationResults {
  readonly results: ReadonlyArray<
    ({ readonly ok: true } & ReservationAnswer) | { readonly ok: false; readonly message: string }
  >;
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
    ...(body['relay'] !== undefined ? { relay: parseRelayRoute(body['relay']) } : {}),
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
      const mask = k['mask'];
      if (mask !== undefined && typeof mask !== 'string') throw badRequest('mask must be a base64 string');
      return {
        key_ID: requireKeyId(k['key_ID']),
        size: k['size'] as number,
        blocks: blocks as number[],
        ...(mask === undefined ? {} : { mask }),
      };
    }),
  };
}

const MAX_PATH = 32;

function parseRelayRoute(relay: unknown): RelayRoute {
  if (!isObject(relay) || !Array.isArray(relay['path'])) throw badRequest('relay.path must be an array');
  const path = relay['path'].map((k) => requireEntityId(k, 'relay.path entry'));
  const tree = relay['tree'] === undefined ? undefined : parseTree(relay['tree'], { left: MAX_TREE });
  const shortest = tree ? 2 : 3;
  if (path.length < shortest || path.length > MAX_PATH) {
    throw badRequest(`relay.path holds ${shortest} to ${MAX_PATH} KMEs`);
  }
  if (new Set(path).size !== path.length) throw badRequest('relay.path passes a KME twice');
  const tag = relay['tag'];
  if (tag !== undefined && typeof tag !== 'string') throw badRequest('relay.tag must be a base64 string');
  const mac = relay['mac_blocks'];
  if (mac !== undefined && (!Array.isArray(mac) || mac.length === 0 || !mac.every(isBlockNumber))) {
    throw badRequest('relay.mac_blocks must be a non-empty array of block numbers');
  }
  return {
    path,
    ...(mac === undefined ? {} : { mac_blocks: mac as number[] }),
    ...(tree === undefined ? {} : { tree }),
    ...(tag === undefined ? {} : { tag }),
  };
}

const isBlockNumber = (b: unknown) => Number.isSafeInteger(b) && (b as number) >= 0;

/** Most KMEs one multicast tree names. */
const MAX_TREE = 64;

function parseTree(tree: unknown, budget: { left: number }): Omit<Branch, 'kme'> {
  if (--budget.left < 0) throw badRequest(`relay.tree names more than ${MAX_TREE} KMEs`);
  if (!isObject(tree) || !Array.isArray(tree['slaves']) || !Array.isArray(tree['children'])) {
    throw badRequest('relay.tree must hold slaves and children arrays');
  }
  return {
    slaves: tree['slaves'].map((s) => requireEntityId(s, 'relay.tree slave')),
    children: tree['children'].map((c): Branch => {
      if (!isObject(c)) throw badRequest('each relay.tree child must be an object');
      return { kme: requireEntityId(c['kme'], 'relay.tree kme'), ...parseTree(c, budget) };
    }),
  };
}

/** A relay hop's answer, as the previous hop reads it; null when it is not one. */
export function parseReservationAnswer(result: unknown): ReservationAnswer {
  if (!isObject(result) || result['masks'] === undefined) return {};
  const masks = result['masks'];
  if (!Array.isArray(masks) || typeof result['tag'] !== 'string')
    throw badRequest('a relay answer needs masks and a tag');
  return {
    masks: masks.map((m): KeyMask => {
      if (!isObject(m) || typeof m['mask'] !== 'string') throw badRequest('each mask must be an object with a mask');
      return { key_ID: requireKeyId(m['key_ID']), mask: m['mask'] };
    }),
    tag: result['tag'],
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
