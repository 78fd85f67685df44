import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { TokenClient, TokenError } from '../../src/sae/token-client.js';
import { ADMIN_SCOPE, startIssuer, type RunningIssuer } from '../helpers/oidc-issuer.js';
import type { HttpResult, TestClient } from '../helpers/sae-client.js';
import { UNAUTHORIZED_TEXT } from '../api/etsi-helpers.js';
import { eventually, startSites, type TwoSites } from '../helpers/two-kmes.js';
import { shown } from '../helpers/redact.js';

const AUDIENCE = 'urn:qks:kmes';
const PREFERENCE = '/api/v1/preferences/preference';
type Status = { stored_key_count: number; max_key_count: number };

describe('access rules, checked before any key is touched', () => {
  let issuer: RunningIssuer;
  let sites: TwoSites;
  /** Every key and token this file saw, none of which may reach a log. */
  const secrets: string[] = [];
  const keep = (res: HttpResult) => {
    for (const k of (res.body as { keys?: Array<{ key: string }> } | null)?.keys ?? []) secrets.push(k.key);
    return res;
  };
  const token = async (sae: string, scope?: string) => {
    const client = new TokenClient({
      issuer: issuer.issuer,
      clientId: sae,
      clientSecret: `secret-${sae}`,
      ...(scope ? { scope } : {}),
    });
    try {
      const value = await client.token();
      secrets.push(value);
      return { authorization: `Bearer ${value}` };
    } finally {
      await client.close();
    }
  };
  // Status and the fixed refusal only: a failing assertion must not print keys.
  const refused = (res: HttpResult, what: string) =>
    assert.deepEqual([res.status, res.text === UNAUTHORIZED_TEXT], [401, true], what);
  /** What a key request could change: the master's pool, deliveries, keys waiting at the peer. */
  const keyState = async (a1: TestClient) => ({
    pool: ((await a1.get('/api/v1/keys/sae-b1/status')).body as Status).stored_key_count,
    a: ((await a1.get('/api/v1/information/info')).body as { keys_delivered: unknown }).keys_delivered,
    b: ((await sites.sae('sae-b2').get('/api/v1/information/info')).body as { keys_waiting_for_slaves: number })
      .keys_waiting_for_slaves,
  });
  const log = (kme: string) => readFileSync(join(sites.deployment.dir, `${kme}.log`), 'utf8');
  const logLines = (kme: string) =>
    log(kme)
      .split('\n')
      .filter(Boolean)
      .map((l) => JSON.parse(l) as Record<string, unknown>);

  before(async () => {
    issuer = await startIssuer({
      audience: AUDIENCE,
      clients: [{ id: 'sae-a1', scope: `openid ${ADMIN_SCOPE}` }, { id: 'sae-b2' }],
    });
    sites = await startSites({
      auth: { mode: 'either', oidc: { issuer: issuer.issuer, audience: AUDIENCE, allow_loopback_http: true } },
      access: {
        admins: ['sae-a2'],
        rules: [
          { sae: 'sae-a1', slaves: ['sae-b1'], max_keys_per_request: 4 },
          { sae: 'sae-b1', slaves: '*', requests_per_minute: 3 },
        ],
      },
      // Links that started an hour ago hold full pools, refilled at 10 blocks a second: the
      // stored key count is stable, and a request that took keys shows for a moment.
      epochMs: Date.now() - 3_600_000,
      rateBps: 2560,
      capacityBlocks: 100,
    });
    await eventually(async () => {
      const s = (await sites.sae('sae-a1').get('/api/v1/keys/sae-b1/status')).body as Status;
      return s.stored_key_count === s.max_key_count;
    }, 10_000);
  });
  after(async () => {
    await sites.stop();
    await issuer.stop();
  });

  it('only an admin changes preferences: a listed SAE, or a token with the admin scope', async () => {
    const [a1, a2] = [sites.sae('sae-a1'), sites.sae('sae-a2')];
    const change = { name: 'log_level', value: 'trace', SAE_ID: 'sae-a1' };
    refused(await a1.post(PREFERENCE, change), 'a certificate of an SAE that is no admin');
    refused(await a1.post(PREFERENCE, { name: 'log_level', value: 'trace' }), 'not even its own');
    refused(await a1.post(PREFERENCE, change, await token('sae-a1')), 'a token without the admin scope');
    await assert.rejects(token('sae-b2', ADMIN_SCOPE), TokenError, 'the issuer gives the scope only to admins');

    // sae-a2 is listed in access.admins; it sets another SAE's preference with SAE_ID.
    const set = await a2.post(PREFERENCE, change);
    assert.equal(set.status, 200, shown(set));
    assert.deepEqual(set.body, { SAE_ID: 'sae-a1', preferences: { key_exchange_timeout: 30, log_level: 'trace' } });
    const unknown = await a2.post(PREFERENCE, { ...change, SAE_ID: 'sae-zz' });
    assert.equal(unknown.status, 400, 'an SAE no KME serves');
    // sae-a1 with an admin-scoped token may too (its certificate alone may not).
    const byToken = await a1.post(
      PREFERENCE,
      { name: 'key_exchange_timeout', value: 90, SAE_ID: 'sae-a2' },
      await token('sae-a1', ADMIN_SCOPE),
    );
    assert.equal(byToken.status, 200, shown(byToken));
    assert.equal(
      ((await a2.get('/api/v1/preferences')).body as { preferences: { key_exchange_timeout: number } }).preferences
        .key_exchange_timeout,
      90,
    );
  });

  it('an SAE may ask only for its listed slaves, at most its largest request, and nothing is taken', async () => {
    const a1 = sites.sae('sae-a1');
    const before = await keyState(a1);
    const full = ((await a1.get('/api/v1/keys/sae-b1/status')).body as Status).max_key_count;
    assert.equal(before.pool, full, 'a stable pool');
    const asToken = await token('sae-a1');
    for (const [what, res] of [
      ['an unlisted slave', await a1.post('/api/v1/keys/sae-b2/enc_keys', { number: 1 })],
      [
        'an unlisted additional slave',
        await a1.post('/api/v1/keys/sae-b1/enc_keys', { additional_slave_SAE_IDs: ['sae-b2'] }),
      ],
      ['an unlisted slave, by token', await a1.post('/api/v1/keys/sae-b2/enc_keys', { number: 1 }, asToken)],
      ['too many keys', await a1.post('/api/v1/keys/sae-b1/enc_keys', { number: 5 })],
      ['too many keys, GET', await a1.get('/api/v1/keys/sae-b1/enc_keys?number=5')],
    ] as const) {
      refused(res, what);
    }
    assert.deepEqual(await keyState(a1), before, 'no key material consumed');

    // The same request within the rules takes keys, which the same measure sees.
    keep(await a1.post('/api/v1/keys/sae-b1/enc_keys', { number: 4 }));
    const afterwards = await keyState(a1);
    assert.ok(afterwards.pool < full, `the pool shows the keys taken (${afterwards.pool} of ${full})`);
    assert.notDeepEqual(afterwards.a, before.a);
    const a2 = keep(await sites.sae('sae-a2').post('/api/v1/keys/sae-b2/enc_keys', { number: 9 }));
    assert.equal(a2.status, 200, 'no rule, no limit');
  });

  it('limits the request rate: a burst, then 401 for enc_keys and dec_keys alike', async () => {
    const b1 = sites.sae('sae-b1');
    const statuses: number[] = [];
    for (let i = 0; i < 3; i++) statuses.push(keep(await b1.get('/api/v1/keys/sae-a1/enc_keys')).status);
    assert.deepEqual(statuses, [200, 200, 200]);
    refused(await b1.get('/api/v1/keys/sae-a1/enc_keys'), 'the fourth in a minute');
    refused(await b1.post('/api/v1/keys/sae-a1/dec_keys', { key_IDs: [{ key_ID: randomUUID() }] }), 'dec_keys');
    assert.equal((await sites.sae('sae-b2').get('/api/v1/keys/sae-a1/enc_keys')).status, 200, 'other SAEs go on');
  });

  it('logs each refusal with its reason and the caller, never a key or a token', async () => {
    const lines = logLines('kme-a');
    const refusals = lines.filter((l) => l['msg'] === 'refused by access rules');
    const by = (sae: string, reason: RegExp, via = 'certificate') =>
      refusals.some((r) => r['sae'] === sae && r['via'] === via && reason.test(String(r['reason'])));
    assert.ok(by('sae-a1', /may not request keys for sae-b2/), 'unlisted slave');
    assert.ok(by('sae-a1', /may not request keys for sae-b2/, 'token'), 'unlisted slave, by token');
    assert.ok(by('sae-a1', /asked for 5 keys; at most 4/), 'too many keys');
    assert.ok(by('sae-a1', /qks:admin scope or an admin SAE/), 'not an admin');
    assert.ok(by('sae-a1', /qks:admin scope or an admin SAE/, 'token'), 'not an admin, by token');
    const rate = logLines('kme-b').filter((l) => l['msg'] === 'refused by access rules');
    assert.ok(rate.some((r) => r['sae'] === 'sae-b1' && /over 3 requests per minute/.test(String(r['reason']))));
    assert.ok(
      lines.some((l) => l['msg'] === 'preference changed' && l['sae'] === 'sae-a2' && l['target'] === 'sae-a1'),
    );
    // sae-a1 was logged at trace level from the first test on: the most the KME ever writes.
    assert.ok(lines.some((l) => l['sae'] === 'sae-a1' && l['msg'] === 'keys delivered to master'));
    assert.ok(secrets.length >= 16, `${secrets.length} keys and tokens to look for`);
    for (const kme of ['kme-a', 'kme-b']) {
      const text = log(kme);
      const leaked = secrets.filter((s) => text.includes(s.includes('.') ? s.split('.')[2]! : s));
      assert.equal(leaked.length, 0, `${leaked.length} secrets in ${kme}.log`);
    }
  });
});
