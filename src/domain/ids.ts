import { badRequest } from './errors.js';

/** SAE and KME IDs: printable, URL-safe, bounded. Anything else is refused before it reaches a store. */
const ENTITY_ID = /^[A-Za-z0-9][A-Za-z0-9._~-]{0,63}$/;
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

export const isEntityId = (value: unknown): value is string => typeof value === 'string' && ENTITY_ID.test(value);

export const isKeyId = (value: unknown): value is string => typeof value === 'string' && UUID.test(value);

export function requireEntityId(value: unknown, what: string): string {
  if (!isEntityId(value)) {
    throw badRequest(
      `${what} must be 1-64 characters of letters, digits, '.', '_', '~' or '-' (starting with a letter or digit)`,
    );
  }
  return value;
}

export function requireKeyId(value: unknown, what = 'key_ID'): string {
  if (!isKeyId(value)) throw badRequest(`${what} must be a lower-case UUID`);
  return value;
}
