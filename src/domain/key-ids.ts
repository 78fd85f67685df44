import { badRequest } from './errors.js';
import { requireKeyId } from './ids.js';

const isPlainObject = (v: unknown): v is Record<string, unknown> =>
  typeof v === 'object' && v !== null && !Array.isArray(v);

/** Validates a POST dec_keys body; returns distinct key IDs in request order. */
export function parseKeyIds(body: unknown, maxKeys: number): string[] {
  if (!isPlainObject(body)) throw badRequest('key IDs request must be a JSON object with key_IDs');
  const unknown = Object.keys(body).filter((k) => k !== 'key_IDs' && k !== 'key_IDs_extension');
  if (unknown.length > 0) throw badRequest(`unknown field in key IDs request: ${unknown.join(', ')}`);
  const list = body['key_IDs'];
  if (!Array.isArray(list) || list.length === 0) throw badRequest('key_IDs must be a non-empty array');
  if (list.length > maxKeys) {
    throw badRequest(`key_IDs may hold at most max_key_per_request (${maxKeys}) entries`);
  }
  const ext = body['key_IDs_extension'];
  if (ext !== undefined && !isPlainObject(ext)) throw badRequest('key_IDs_extension must be an object');
  const ids = list.map((entry) => {
    if (!isPlainObject(entry)) throw badRequest('each key_IDs entry must be an object with key_ID');
    const extra = Object.keys(entry).filter((k) => k !== 'key_ID' && k !== 'key_ID_extension');
    if (extra.length > 0) throw badRequest(`unknown field in key_IDs entry: ${extra.join(', ')}`);
    const idExt = entry['key_ID_extension'];
    if (idExt !== undefined && !isPlainObject(idExt)) throw badRequest('key_ID_extension must be an object');
    return requireKeyId(entry['key_ID']);
  });
  if (new Set(ids).size !== ids.length) throw badRequest('key_IDs has duplicates');
  return ids;
}

/** Validates the query of a GET dec_keys call: exactly one key_ID. */
export function parseKeyIdQuery(query: Record<string, unknown>): string[] {
  const unknown = Object.keys(query).filter((k) => k !== 'key_ID');
  if (unknown.length > 0) throw badRequest(`GET dec_keys accepts only key_ID; unknown: ${unknown.join(', ')}`);
  const id = query['key_ID'];
  if (id === undefined) throw badRequest('key_ID query parameter is required');
  if (typeof id !== 'string') throw badRequest('GET dec_keys takes one key_ID; use POST for several');
  return [requireKeyId(id)];
}
