import { createHmac, timingSafeEqual } from 'node:crypto';

/**
 * The SAE-to-SAE key agreement protocol, version 3 (docs/sae-agreement.md). Messages travel as
 * length-framed JSON over mutual TLS between the two SAEs' certificates. Version 3 carries the
 * initiator's key proof in the offer, so one round trip confirms the keys both ways.
 */
export const PROTOCOL_VERSION = 3;

/** What an offer names; its proof covers exactly these fields. */
export interface OfferTerms {
  exchange: string;
  master: string;
  slave: string;
  key_IDs: string[];
}

export interface Offer extends OfferTerms {
  v: 3;
  type: 'offer';
  /** HMAC with the offered keys: the initiator holds them. */
  proof: string;
}

export interface Ack {
  v: 3;
  type: 'ack';
  exchange: string;
  /** HMAC with the agreed keys: the responder holds the same keys and has kept them. */
  proof: string;
}

export interface ErrorMessage {
  v: number;
  type: 'error';
  exchange?: string;
  code: AgreementErrorCode;
  message: string;
}

export type Message = Offer | Ack | ErrorMessage;

export type AgreementErrorCode =
  | 'bad_message'
  | 'unsupported_version'
  | 'wrong_peer'
  | 'not_addressed_to_me'
  | 'replay'
  | 'kme_refused'
  | 'bad_proof'
  | 'timeout'
  | 'internal';

/** A failed agreement; `code` says which check failed, on this side or the peer's. */
export class AgreementError extends Error {
  override name = 'AgreementError';
  constructor(
    readonly code: AgreementErrorCode,
    message: string,
  ) {
    super(message);
  }
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
const ID = /^[A-Za-z0-9][A-Za-z0-9._~-]{0,63}$/;
const MAX_KEYS = 1024;

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

const bad = (what: string) => new AgreementError('bad_message', what);

function checkProof(proof: unknown): void {
  if (typeof proof !== 'string' || proof.length > 128) throw bad('proof must be base64');
}

/** Checks a received frame against the protocol; returns it typed, or throws bad_message. */
export function parseMessage(raw: unknown): Message {
  if (!isObject(raw)) throw bad('message is not an object');
  // A peer's error is read whatever its version, so that an older peer's refusal reaches the user.
  const anyVersionError = raw['type'] === 'error' && Number.isInteger(raw['v']);
  if (raw['v'] !== PROTOCOL_VERSION && !anyVersionError) {
    throw new AgreementError(
      'unsupported_version',
      `protocol version ${String(raw['v'])} is not supported (this side speaks ${PROTOCOL_VERSION})`,
    );
  }
  const exchange = raw['exchange'];
  if (raw['type'] !== 'error' && (typeof exchange !== 'string' || !UUID.test(exchange))) {
    throw bad('exchange must be a UUID');
  }
  switch (raw['type']) {
    case 'offer': {
      const ids = raw['key_IDs'];
      if (!Array.isArray(ids) || ids.length === 0 || ids.length > MAX_KEYS)
        throw bad('key_IDs must be a non-empty array');
      if (!ids.every((id) => typeof id === 'string' && UUID.test(id))) throw bad('key_IDs must be UUIDs');
      if (new Set(ids).size !== ids.length) throw bad('key_IDs has duplicates');
      for (const f of ['master', 'slave'] as const) {
        if (typeof raw[f] !== 'string' || !ID.test(raw[f])) throw bad(`${f} must be an SAE ID`);
      }
      checkProof(raw['proof']);
      return raw as unknown as Offer;
    }
    case 'ack':
      checkProof(raw['proof']);
      return raw as unknown as Ack;
    case 'error':
      if (typeof raw['code'] !== 'string' || typeof raw['message'] !== 'string')
        throw bad('error needs code and message');
      return { ...(raw as unknown as ErrorMessage), message: raw['message'].slice(0, 500) };
    default:
      throw bad(`unknown message type ${String(raw['type'])}`);
  }
}

/**
 * Key confirmation: an HMAC keyed with all agreed keys over the exchange, the key IDs and who is
 * speaking. Only a side that holds exactly these keys can compute it; it reveals nothing of them.
 */
export function keyProof(role: 'offer' | 'ack', offer: OfferTerms, keys: readonly Buffer[]): string {
  const material = Buffer.concat(keys);
  const mac = createHmac('sha256', material)
    .update(
      `qks/sae-agreement/v3/${role}\n${offer.exchange}\n${offer.master}\n${offer.slave}\n${offer.key_IDs.join(',')}`,
    )
    .digest('base64');
  material.fill(0);
  return mac;
}

export function proofMatches(expected: string, received: string): boolean {
  const a = Buffer.from(expected, 'base64');
  const b = Buffer.from(received, 'base64');
  return a.length === b.length && timingSafeEqual(a, b);
}
