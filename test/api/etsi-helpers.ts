import assert from 'node:assert/strict';
import type { HttpResult } from '../helpers/sae-client.js';
import { shown } from '../helpers/redact.js';

/** The one body of every 401: a client that parses JSON on every non-200 gets JSON. */
export const UNAUTHORIZED = { message: 'unauthorized' };
export const UNAUTHORIZED_TEXT = JSON.stringify(UNAUTHORIZED);

export interface Container {
  keys: Array<{ key_ID: string; key: string }>;
}

export interface Status {
  stored_key_count: number;
  max_key_count: number;
  [field: string]: unknown;
}

/** The standard allows only these answers: 200, or 400, 401 and 503 with an Error body (401's is fixed). */
export function assertEtsiShape(res: HttpResult): void {
  assert.ok([200, 400, 401, 503].includes(res.status), `status ${res.status} is not one of the standard's`);
  if (res.status === 401) assert.deepEqual(res.body, UNAUTHORIZED, '401 says only "unauthorized"');
  if (res.status === 400 || res.status === 503) {
    const body = res.body as { message?: unknown; details?: unknown };
    assert.equal(typeof body.message, 'string', `Error body with a message: ${shown(res)}`);
    if (body.details !== undefined) assert.ok(Array.isArray(body.details));
  }
}

export function assertError(res: HttpResult, status: 400 | 503, message?: string | RegExp): void {
  assertEtsiShape(res);
  assert.equal(res.status, status, shown(res));
  const text = (res.body as { message: string }).message;
  if (typeof message === 'string') assert.equal(text, message);
  else if (message) assert.match(text, message);
}

export function keysOf(res: HttpResult): Container['keys'] {
  assertEtsiShape(res);
  assert.equal(res.status, 200, shown(res));
  return (res.body as Container).keys;
}

export const keyIds = (keys: Container['keys']) => ({ key_IDs: keys.map((k) => ({ key_ID: k.key_ID })) });
