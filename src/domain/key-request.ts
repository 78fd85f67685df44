import { badRequest, QksError } from './errors.js';
import { requireEntityId } from './ids.js';
import type { KeyLimits } from './limits.js';

export type Extensions = Record<string, unknown>;

/** A Get key request after validation, with the standard's defaults filled in. */
export interface KeyRequest {
  readonly number: number;
  readonly size: number;
  readonly additionalSlaveSaeIds: readonly string[];
  readonly extensionMandatory: Extensions;
  readonly extensionOptional: Extensions;
}

const KEY_REQUEST_FIELDS = new Set([
  'number',
  'size',
  'additional_slave_SAE_IDs',
  'extension_mandatory',
  'extension_optional',
]);

const isPlainObject = (v: unknown): v is Record<string, unknown> =>
  typeof v === 'object' && v !== null && !Array.isArray(v);

/**
 * Validates a POST enc_keys body (undefined for an empty body). `slave` is the path's slave SAE:
 * naming it again in additional_slave_SAE_IDs is a duplicate like any other.
 */
export function parseKeyRequest(body: unknown, limits: KeyLimits, slave?: string): KeyRequest {
  if (body === undefined) body = {};
  if (!isPlainObject(body)) throw badRequest('key request must be a JSON object');
  const unknown = Object.keys(body).filter((k) => !KEY_REQUEST_FIELDS.has(k));
  if (unknown.length > 0) throw badRequest(`unknown field in key request: ${unknown.join(', ')}`);
  return {
    number: checkNumber(body['number'], limits),
    size: checkSize(body['size'], limits),
    additionalSlaveSaeIds: checkAdditionalSlaves(body['additional_slave_SAE_IDs'], limits, slave),
    extensionMandatory: checkExtensions(body['extension_mandatory'], 'extension_mandatory'),
    extensionOptional: checkExtensions(body['extension_optional'], 'extension_optional'),
  };
}

/** Validates the query of a GET enc_keys call: only `number` and `size` are allowed there. */
export function parseKeyRequestQuery(query: Record<string, unknown>, limits: KeyLimits): KeyRequest {
  const unknown = Object.keys(query).filter((k) => k !== 'number' && k !== 'size');
  if (unknown.length > 0) {
    throw badRequest(`GET enc_keys accepts only number and size; use POST for: ${unknown.join(', ')}`);
  }
  return {
    number: checkNumber(queryInteger(query['number'], 'number'), limits),
    size: checkSize(queryInteger(query['size'], 'size'), limits),
    additionalSlaveSaeIds: [],
    extensionMandatory: {},
    extensionOptional: {},
  };
}

/** Query values arrive as strings; only plain decimal integers are accepted. */
function queryInteger(value: unknown, name: string): unknown {
  if (value === undefined) return undefined;
  if (typeof value !== 'string') throw badRequest(`${name} must be given once`);
  if (!/^-?\d{1,15}$/.test(value)) throw badRequest(`${name} must be an integer`);
  return Number(value);
}

function checkNumber(value: unknown, limits: KeyLimits): number {
  if (value === undefined) return 1;
  if (!Number.isSafeInteger(value)) throw badRequest('number must be an integer');
  const n = value as number;
  if (n < 1 || n > limits.maxKeyPerRequest) {
    throw badRequest(`number must be between 1 and max_key_per_request (${limits.maxKeyPerRequest})`);
  }
  return n;
}

function checkSize(value: unknown, limits: KeyLimits): number {
  if (value === undefined) return limits.keySize;
  if (!Number.isSafeInteger(value)) throw badRequest('size must be an integer');
  const size = value as number;
  if (size % 8 !== 0) throw new QksError('SIZE_NOT_MULTIPLE_OF_8');
  if (size < limits.minKeySize || size > limits.maxKeySize) {
    throw badRequest(
      `size must be between min_key_size (${limits.minKeySize}) and max_key_size (${limits.maxKeySize})`,
    );
  }
  return size;
}

function checkAdditionalSlaves(value: unknown, limits: KeyLimits, slave: string | undefined): string[] {
  if (value === undefined) return [];
  if (!Array.isArray(value)) throw badRequest('additional_slave_SAE_IDs must be an array of SAE IDs');
  if (value.length > limits.maxSaeIdCount) {
    throw badRequest(
      limits.maxSaeIdCount === 0
        ? 'additional_slave_SAE_IDs is not supported by this KME (max_SAE_ID_count is 0)'
        : `additional_slave_SAE_IDs may name at most max_SAE_ID_count (${limits.maxSaeIdCount}) SAEs`,
    );
  }
  const ids = value.map((id) => requireEntityId(id, 'each additional_slave_SAE_IDs entry'));
  const named = slave === undefined ? ids : [slave, ...ids];
  if (new Set(named).size !== named.length) throw badRequest('additional_slave_SAE_IDs has duplicates');
  return ids;
}

/** The standard types extensions as arrays of objects; they are merged into one name → value map. */
function checkExtensions(value: unknown, field: string): Extensions {
  if (value === undefined) return {};
  if (!Array.isArray(value) || !value.every(isPlainObject)) {
    throw badRequest(`${field} must be an array of objects`);
  }
  const merged: Extensions = {};
  for (const entry of value) {
    for (const [name, v] of Object.entries(entry)) {
      // Own names only, and defined rather than assigned: `constructor`, `toString` and `__proto__`
      // are unknown names like any other, neither duplicates nor a change of prototype.
      if (Object.hasOwn(merged, name)) throw badRequest(`${field} names ${name} more than once`);
      Object.defineProperty(merged, name, { value: v, enumerable: true, writable: true, configurable: true });
    }
  }
  return merged;
}
