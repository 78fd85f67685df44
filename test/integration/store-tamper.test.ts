import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import Database from 'better-sqlite3';
import { eventually, startSites, type TwoSites } from '../helpers/two-kmes.js';
import { shown } from '../helpers/redact.js';

interface Container {
  keys: Array<{ key_ID: string; key: string }>;
}

/**
 * Someone who can write a KME's keys.db but has not its master key: what they change in the file
 * must never hand key material to another SAE, nor the same material out twice.
 */
describe('a key store edited behind the KME’s back', () => {
  let sites: TwoSites;
  /** The attacker's own connection to a KME's store file (WAL lets it write beside the KME). */
  const storeOf = (kme: string) =>
    new Database(join(sites.deployment.configs.find((c) => c.kme === kme)!.config.data_dir, 'keys.db'));
  before(async () => {
    sites = await startSites();
    await eventually(
      async () => {
        const s = await sites.sae('sae-a1').get('/api/v1/keys/sae-b1/status');
        return (s.body as { stored_key_count: number }).stored_key_count >= 20;
      },
      10_000,
      'key material',
    );
  });
  after(() => sites.stop());

  it('gives a key whose slave was changed in the file to nobody, answering with the ETSI error', async () => {
    const got = await sites.sae('sae-a1').post('/api/v1/keys/sae-b1/enc_keys', { number: 1, size: 256 });
    assert.equal(got.status, 200, shown(got));
    const keyId = (got.body as Container).keys[0]!.key_ID;
    const db = storeOf('kme-b');
    assert.equal(db.prepare(`UPDATE keys SET pending = '["sae-b2"]' WHERE key_id = ?`).run(keyId).changes, 1);
    db.close();
    for (const slave of ['sae-b2', 'sae-b1']) {
      const taken = await sites.sae(slave).post('/api/v1/keys/sae-a1/dec_keys', { key_IDs: [{ key_ID: keyId }] });
      assert.equal(taken.status, 503, shown(taken));
      assert.deepEqual(Object.keys(taken.body as object), ['message']);
      assert.match((taken.body as { message: string }).message, /ownership check/);
    }
    // The KME goes on serving: a new key reaches its slave.
    const next = await sites.sae('sae-a1').post('/api/v1/keys/sae-b1/enc_keys', { number: 1, size: 256 });
    assert.equal(next.status, 200, shown(next));
    const nextId = (next.body as Container).keys[0]!.key_ID;
    const fetched = await sites.sae('sae-b1').post('/api/v1/keys/sae-a1/dec_keys', { key_IDs: [{ key_ID: nextId }] });
    assert.equal(fetched.status, 200, shown(fetched));
  });

  it('does not cut a key from a block of the peer’s share moved into its own', async () => {
    const db = storeOf('kme-a');
    const { seq } = db.prepare("SELECT min(seq) AS seq FROM blocks WHERE owner = 'kme-a'").get() as { seq: number };
    // kme-b cuts its keys from odd blocks: kme-a taking one too would give its bytes to two pairs.
    const moved = db.prepare("UPDATE blocks SET owner = 'kme-a' WHERE owner = 'kme-b' AND seq = ?").run(seq - 1);
    db.close();
    assert.equal(moved.changes, 1);
    const refused = await sites.sae('sae-a1').post('/api/v1/keys/sae-a2/enc_keys', { number: 1, size: 256 });
    assert.equal(refused.status, 503, shown(refused));
    assert.deepEqual(Object.keys(refused.body as object), ['message']);
    const next = await sites.sae('sae-a1').post('/api/v1/keys/sae-a2/enc_keys', { number: 1, size: 256 });
    assert.equal(next.status, 200, shown(next));
  });

  it('never cuts blocks put back from an earlier copy into a key for another pair', async () => {
    const db = storeOf('kme-a');
    const backup = db
      .prepare("SELECT link, owner, seq, sealed FROM blocks WHERE owner = 'kme-a' ORDER BY seq LIMIT 4")
      .all() as Array<{ link: string; owner: string; seq: number; sealed: Buffer }>;
    // A pair at kme-a alone: the key is cut from kme-a's oldest blocks, the ones copied.
    const first = await sites.sae('sae-a1').post('/api/v1/keys/sae-a2/enc_keys', { number: 4, size: 256 });
    assert.equal(first.status, 200, shown(first));
    const put = db.prepare('INSERT OR IGNORE INTO blocks (link, owner, seq, sealed) VALUES (?, ?, ?, ?)');
    assert.equal(
      backup.reduce((n, r) => n + put.run(r.link, r.owner, r.seq, r.sealed).changes, 0),
      4,
      'the copied blocks are back in the file',
    );
    db.close();
    const second = await sites.sae('sae-a2').post('/api/v1/keys/sae-a1/enc_keys', { number: 4, size: 256 });
    assert.equal(second.status, 200, shown(second));
    const firstKeys = new Set((first.body as Container).keys.map((k) => k.key));
    for (const k of (second.body as Container).keys) assert.ok(!firstKeys.has(k.key), 'the same material twice');
  });
});
