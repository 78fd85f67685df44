import { badRequest } from './errors.js';
import { isEntityId } from './ids.js';

/**
 * What an integration agent (a TLS tunnel, stunnel, an IPsec connection) tells its SAE's KME about
 * itself, for the operator dashboard: which key it uses now and when it rotates next. Key IDs
 * only; there is no field that could carry key material.
 */
export type IntegrationKind = 'tunnel' | 'stunnel' | 'ipsec';
export type IntegrationState = 'starting' | 'up' | 'rotating' | 'down';

export interface IntegrationReport {
  readonly kind: IntegrationKind;
  /** The agent's own name for this connection, unique per SAE and kind. */
  readonly name: string;
  /** The key in use, or null before the first key. */
  readonly key_ID: string | null;
  /** When the next key takes over (ms since the epoch), or null when unknown. */
  readonly rotates_at: number | null;
  readonly state: IntegrationState;
  /** The SAE at the other end. */
  readonly peer: string;
}

const KINDS: readonly string[] = ['tunnel', 'stunnel', 'ipsec'];
const STATES: readonly string[] = ['starting', 'up', 'rotating', 'down'];
const FIELDS = ['kind', 'name', 'key_ID', 'rotates_at', 'state', 'peer'];
const NAME = /^[A-Za-z0-9][A-Za-z0-9._:@~-]{0,63}$/;
/** ETSI key IDs are UUIDs; other KMEs' may be any short printable token. */
const KEY_ID = /^[A-Za-z0-9][A-Za-z0-9._~-]{0,63}$/;

/** Validates a report body; anything unexpected is refused with the reason. */
export function parseIntegrationReport(body: unknown): IntegrationReport {
  if (typeof body !== 'object' || body === null || Array.isArray(body)) throw badRequest('body must be a JSON object');
  const b = body as Record<string, unknown>;
  const unknown = Object.keys(b).filter((k) => !FIELDS.includes(k));
  if (unknown.length > 0) throw badRequest(`unknown fields: ${unknown.join(', ')}`);
  if (typeof b['kind'] !== 'string' || !KINDS.includes(b['kind']))
    throw badRequest(`kind must be one of ${KINDS.join(', ')}`);
  if (typeof b['name'] !== 'string' || !NAME.test(b['name']))
    throw badRequest('name must be 1-64 printable characters');
  const keyId = b['key_ID'] ?? null;
  if (keyId !== null && (typeof keyId !== 'string' || !KEY_ID.test(keyId)))
    throw badRequest('key_ID must be a key ID or null');
  const rotatesAt = parseTime(b['rotates_at'] ?? null);
  if (typeof b['state'] !== 'string' || !STATES.includes(b['state']))
    throw badRequest(`state must be one of ${STATES.join(', ')}`);
  if (!isEntityId(b['peer'])) throw badRequest('peer must be an SAE ID');
  return {
    kind: b['kind'] as IntegrationKind,
    name: b['name'],
    key_ID: keyId,
    rotates_at: rotatesAt,
    state: b['state'] as IntegrationState,
    peer: b['peer'],
  };
}

function parseTime(value: unknown): number | null {
  if (value === null) return null;
  const ms = typeof value === 'number' ? value : typeof value === 'string' ? Date.parse(value) : NaN;
  if (!Number.isFinite(ms) || ms < 0 || (typeof value === 'number' && !Number.isInteger(value))) {
    throw badRequest('rotates_at must be an ISO 8601 time, milliseconds since the epoch, or null');
  }
  return ms;
}

/** The first 8 characters of a key ID: enough to tell keys apart on a screen. */
export const shortKeyId = (keyId: string): string => keyId.slice(0, 8);
