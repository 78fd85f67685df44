import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import type { HttpResult } from './sae-client.js';

/**
 * Test output must never show key bytes: a failing assertion prints its message and both values.
 * These helpers compare keys in full but describe them by key ID, length and a short hash only.
 */

const digest = (bytes: Uint8Array) => createHash('sha256').update(bytes).digest('hex');

/** A key's stand-in for output: its length and the first 8 hex digits of its SHA-256. */
export function fingerprint(key: Uint8Array | string): string {
  const bytes = typeof key === 'string' ? Buffer.from(key, 'base64') : key;
  return `<${bytes.length} bytes #${digest(bytes).slice(0, 8)}>`;
}

/** Names under which tests meet key material: ETSI `key`, the SDK's `key`, secrets files' `secret`. */
const SECRET_FIELDS = new Set(['key', 'secret', 'psk']);

/** A deep copy with every key-bearing field and every byte buffer replaced by its fingerprint. */
export function redact(value: unknown): unknown {
  if (value instanceof Uint8Array) return fingerprint(value);
  if (Array.isArray(value)) return value.map(redact);
  if (typeof value !== 'object' || value === null) return value;
  return Object.fromEntries(
    Object.entries(value).map(([name, v]) => [
      name,
      SECRET_FIELDS.has(name) && (typeof v === 'string' || v instanceof Uint8Array) ? fingerprint(v) : redact(v),
    ]),
  );
}

/** An HTTP answer for an assertion message: status and body, key bytes replaced, at most 300 characters. */
export function shown(res: HttpResult): string {
  const body = res.body === null ? '' : typeof res.body === 'string' ? res.body : JSON.stringify(redact(res.body));
  return `${res.status} ${body.length > 300 ? `${body.slice(0, 300)}…` : body}`;
}

interface SomeKey {
  readonly key_ID?: string;
  readonly keyId?: string;
  readonly key: Uint8Array | string;
}

/** Full-strength comparison form (whole SHA-256), never printed. */
const exact = (keys: readonly SomeKey[]) =>
  keys.map((k) => `${k.key_ID ?? k.keyId} ${digest(typeof k.key === 'string' ? Buffer.from(k.key, 'base64') : k.key)}`);

/** Printable form: key IDs and short fingerprints. */
const printable = (keys: readonly SomeKey[]) => keys.map((k) => `${k.key_ID ?? k.keyId} ${fingerprint(k.key)}`);

/**
 * Asserts two key lists hold the same key IDs with the same bytes, in order (ETSI containers'
 * `{key_ID, key}` in base64 or the SDK's `{keyId, key}` buffers, mixed freely). On a mismatch it
 * prints IDs and fingerprints, never bytes.
 */
export function assertSameKeys(actual: readonly SomeKey[], expected: readonly SomeKey[], message?: string): void {
  const a = exact(actual);
  const e = exact(expected);
  if (a.length === e.length && a.every((x, i) => x === e[i])) return;
  throw new assert.AssertionError({
    message: `${message ? `${message}: ` : ''}keys differ`,
    actual: printable(actual),
    expected: printable(expected),
    operator: 'assertSameKeys',
  });
}
