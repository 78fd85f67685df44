import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { eventually, startSites, type TwoSites } from '../helpers/two-kmes.js';

describe('access rules, before any key is touched', () => {
  let sites: TwoSites;
  const delivered = async () =>
    ((await sites.sae('sae-a2').get('/api/v1/information/info')).body as { keys_delivered: unknown }).keys_delivered;

  before(async () => {
    sites = await startSites({
      access: {
        admins: ['sae-a2'],
        rules: [
          { sae: 'sae-a1', slaves: ['sae-b1'], max_keys_per_request: 4 },
          { sae: 'sae-b1', slaves: '*', requests_per_minute: 3 },
        ],
      },
    });
    await eventually(
      async () =>
        ((await sites.sae('sae-a1').get('/api/v1/keys/sae-b1/status')).body as { stored_key_count: number })
          .stored_key_count > 50,
      10_000,
    );
  });
  after(() => sites.stop());

  it('an SAE may ask only for its listed slaves, and at most its largest request', async () => {
    const a1 = sites.sae('sae-a1');
    const before = await delivered();
    for (const res of [
      await a1.post('/api/v1/keys/sae-b2/enc_keys', { number: 1 }),
      await a1.post('/api/v1/keys/sae-b1/enc_keys', { number: 1, additional_slave_SAE_IDs: ['sae-b2'] }),
      await a1.post('/api/v1/keys/sae-b1/enc_keys', { number: 5 }),
    ]) {
      assert.equal(res.status, 401);
      assert.equal(res.text, '');
    }
    assert.deepEqual(await delivered(), before, 'no key was touched');
    assert.equal((await a1.post('/api/v1/keys/sae-b1/enc_keys', { number: 4 })).status, 200);
    assert.equal(
      (await sites.sae('sae-a2').post('/api/v1/keys/sae-b2/enc_keys', { number: 9 })).status,
      200,
      'no rule, no limit',
    );
  });

  it('limits the request rate', async () => {
    const b1 = sites.sae('sae-b1');
    const statuses: number[] = [];
    for (let i = 0; i < 5; i++) statuses.push((await b1.get('/api/v1/keys/sae-a1/enc_keys')).status);
    assert.deepEqual(statuses, [200, 200, 200, 401, 401]);
  });

  it('only an admin changes preferences, for any SAE', async () => {
    const refused = await sites
      .sae('sae-a1')
      .post('/api/v1/preferences/preference', { name: 'log_level', value: 'debug' });
    assert.equal(refused.status, 401);
    const set = await sites
      .sae('sae-a2')
      .post('/api/v1/preferences/preference', { name: 'log_level', value: 'warn', SAE_ID: 'sae-a1' });
    assert.equal(set.status, 200, set.text);
    assert.equal(
      ((await sites.sae('sae-a1').get('/api/v1/preferences')).body as { preferences: { log_level: string } })
        .preferences.log_level,
      'warn',
    );
  });

  it('logs each refusal with its reason and the caller, never key material', async () => {
    const keys = (await sites.sae('sae-a1').post('/api/v1/keys/sae-b1/enc_keys', { number: 1 })).body as {
      keys: Array<{ key: string }>;
    };
    const log = readFileSync(join(sites.deployment.dir, 'kme-a.log'), 'utf8');
    const refusals = log
      .split('\n')
      .filter((l) => l.includes('refused by access rules'))
      .map((l) => JSON.parse(l) as Record<string, unknown>);
    assert.ok(
      refusals.some((r) => r['sae'] === 'sae-a1' && /may not request keys for sae-b2/.test(r['reason'] as string)),
    );
    assert.ok(refusals.some((r) => r['sae'] === 'sae-a1' && /at most 4/.test(r['reason'] as string)));
    assert.ok(!log.includes(keys.keys[0]!.key), 'no key bytes in the log');
  });
});
