import assert from 'node:assert/strict';
import { assertSameKeys } from './redact.js';
import { eventually, type TwoSites } from './two-kmes.js';

export type WireKeys = Array<{ key_ID: string; key: string }>;

/**
 * Keys from `master` for `slave` (`query` as in GET enc_keys), asked again until the KMEs have the
 * material; then the slave fetches them, and both copies must be the same.
 */
export async function agreeKeys(sites: TwoSites, master: string, slave: string, query = 'number=2'): Promise<WireKeys> {
  let got = { status: 0, body: null as unknown };
  await eventually(
    async () => (got = await sites.sae(master).get(`/api/v1/keys/${slave}/enc_keys?${query}`)).status === 200,
    20_000,
    `keys from ${master} for ${slave}`,
  );
  const keys = (got.body as { keys: WireKeys }).keys;
  const fetched = await sites.sae(slave).post(`/api/v1/keys/${master}/dec_keys`, {
    key_IDs: keys.map((k) => ({ key_ID: k.key_ID })),
  });
  assert.equal(fetched.status, 200, `${slave} fetches: ${JSON.stringify(fetched.body)}`);
  assertSameKeys((fetched.body as { keys: WireKeys }).keys, keys, `${master} → ${slave}`);
  return keys;
}
