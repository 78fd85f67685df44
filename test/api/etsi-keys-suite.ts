import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { Topology } from '../../src/domain/topology.js';
import { eventually, startSites, type TwoSites } from '../helpers/two-kmes.js';
import { assertError, keyIds, keysOf, UNAUTHORIZED, type Status } from './etsi-helpers.js';
import { assertSameKeys } from '../helpers/redact.js';

export interface EtsiPair {
  /** What the suite is run between. */
  readonly title: string;
  /** Sites and links beyond the default two (the links run at 256 kbit/s, 50,000 blocks each). */
  readonly topology?: Topology;
  /** The slave side: its KME and its two SAEs. */
  readonly targetKme: string;
  readonly slave: string;
  readonly slave2: string;
  /** What status_extension says beyond the first link and its source (a relay's path). */
  readonly extension?: Record<string, unknown>;
  /**
   * A relay path's count takes its later hops from their link-state adverts, up to 2 s old, so the
   * live count is read on the first link: the status for an SAE at its far end (a direct slave).
   */
  readonly firstHopSlave?: string;
  /** Blocks of the first link each enc_keys takes beyond the keys' (a relay's MAC key). */
  readonly blocksPerRequest?: number;
}

/**
 * ETSI GS QKD 014: Get status, Get key and Get key with key IDs, in both forms, between sae-a1 (and
 * sae-a2) at kme-a and a slave side: the same tests for a direct link and a relayed path.
 */
export function describeEtsiKeyDelivery(pair: EtsiPair): void {
  const { targetKme, slave: B1, slave2: B2 } = pair;
  describe(`ETSI 014 key delivery ${pair.title}`, () => {
    let sites: TwoSites;
    before(async () => {
      // A slow link: 256 kbit/s gives kme-a 500 blocks of 256 bits a second, in batches every 100 ms.
      sites = await startSites({
        rateBps: 256_000,
        capacityBlocks: 50_000,
        ...(pair.topology ? { topology: pair.topology } : {}),
      });
      const a1 = sites.sae('sae-a1');
      await eventually(
        async () => ((await a1.get(`/api/v1/keys/${B1}/status`)).body as Status).stored_key_count >= 1000,
        20_000,
        'key material',
      );
    });
    after(() => sites.stop());

    it('status has every field of the standard, with true values', async () => {
      const res = await sites.sae('sae-a1').get(`/api/v1/keys/${B1}/status`);
      assert.equal(res.status, 200);
      const s = res.body as Status;
      assert.deepEqual(
        Object.keys(s).sort(),
        [
          'source_KME_ID',
          'target_KME_ID',
          'master_SAE_ID',
          'slave_SAE_ID',
          'key_size',
          'stored_key_count',
          'max_key_count',
          'max_key_per_request',
          'max_key_size',
          'min_key_size',
          'max_SAE_ID_count',
          'status_extension',
        ].sort(),
      );
      assert.equal(s['source_KME_ID'], 'kme-a');
      assert.equal(s['target_KME_ID'], targetKme);
      assert.equal(s['master_SAE_ID'], 'sae-a1');
      assert.equal(s['slave_SAE_ID'], B1);
      assert.equal(s['key_size'], 256);
      assert.equal(s.max_key_count, 50_000, 'capacity of 50,000 blocks of 256 bits');
      assert.ok(s.stored_key_count >= 1000 && s.stored_key_count <= s.max_key_count);
      assert.equal(s['max_key_per_request'], 128);
      assert.equal(s['min_key_size'], 64);
      assert.equal(s['max_key_size'], 8192);
      assert.equal(s['max_SAE_ID_count'], 8);
      assert.deepEqual(s['status_extension'], {
        qks_link_ID: 'link-a-b',
        qks_key_source: 'simulated',
        ...pair.extension,
      });
      const local = (await sites.sae('sae-a1').get('/api/v1/keys/sae-a2/status')).body as Status;
      assert.equal(local['target_KME_ID'], 'kme-a', 'a slave at the same KME');
    });

    it('stored_key_count is live: it drops by what enc_keys takes', async () => {
      const a1 = sites.sae('sae-a1');
      const started = Date.now();
      const counted = `/api/v1/keys/${pair.firstHopSlave ?? B1}/status`;
      const before = ((await a1.get(counted)).body as Status).stored_key_count;
      keysOf(await a1.post(`/api/v1/keys/${B1}/enc_keys`, { number: 128 }));
      keysOf(await a1.post(`/api/v1/keys/${B1}/enc_keys`, { number: 100, size: 512 }));
      const after = ((await a1.get(counted)).body as Status).stored_key_count;
      const taken = 128 + 100 * 2 + 2 * (pair.blocksPerRequest ?? 0);
      // Meanwhile the link delivered at most 500 blocks a second, in 100 ms batches.
      const arrived = Math.ceil(((Date.now() - started + 100) / 1000) * 500);
      assert.ok(after <= before - taken + arrived && after >= before - taken, `${before} → ${after}`);
    });

    it('enc_keys defaults to one key of key_size, by POST with an empty body, no body, or by GET', async () => {
      const a1 = sites.sae('sae-a1');
      for (const res of [
        await a1.post(`/api/v1/keys/${B1}/enc_keys`, {}),
        await a1.post(`/api/v1/keys/${B1}/enc_keys`, '', { 'content-type': 'application/json' }),
        await a1.call('POST', `/api/v1/keys/${B1}/enc_keys`),
        await a1.get(`/api/v1/keys/${B1}/enc_keys`),
      ]) {
        const keys = keysOf(res);
        assert.equal(keys.length, 1);
        assert.equal(Buffer.from(keys[0]!.key, 'base64').length, 32);
        assert.match(keys[0]!.key_ID, /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
      }
    });

    it('enc_keys gives number keys of size bits, by POST and GET', async () => {
      const a1 = sites.sae('sae-a1');
      const post = keysOf(await a1.post(`/api/v1/keys/${B1}/enc_keys`, { number: 3, size: 1024 }));
      const get = keysOf(await a1.get(`/api/v1/keys/${B1}/enc_keys?number=2&size=72`));
      assert.deepEqual(
        post.map((k) => Buffer.from(k.key, 'base64').length),
        [128, 128, 128],
      );
      assert.deepEqual(
        get.map((k) => Buffer.from(k.key, 'base64').length),
        [9, 9],
      );
      const b1 = sites.sae(B1);
      assertSameKeys(keysOf(await b1.post('/api/v1/keys/sae-a1/dec_keys', keyIds(post))), post);
      for (const k of get) {
        assertSameKeys(keysOf(await b1.get(`/api/v1/keys/sae-a1/dec_keys?key_ID=${k.key_ID}`)), [k]);
      }
    });

    it('refuses bad sizes and numbers with the standard’s messages, taking nothing', async () => {
      const a1 = sites.sae('sae-a1');
      const delivered = async () =>
        ((await a1.get('/api/v1/information/info')).body as { keys_delivered: unknown }).keys_delivered;
      const before = await delivered();
      assertError(await a1.post(`/api/v1/keys/${B1}/enc_keys`, { size: 100 }), 400, 'size shall be a multiple of 8');
      assertError(await a1.get(`/api/v1/keys/${B1}/enc_keys?size=12`), 400, 'size shall be a multiple of 8');
      assertError(await a1.post(`/api/v1/keys/${B1}/enc_keys`, { size: 56 }), 400, /min_key_size/);
      assertError(await a1.post(`/api/v1/keys/${B1}/enc_keys`, { size: 8200 }), 400, /max_key_size/);
      for (const number of [0, -1, 129, 1.5, '2', null]) {
        assertError(await a1.post(`/api/v1/keys/${B1}/enc_keys`, { number }), 400, /number/);
      }
      assertError(
        await a1.get(`/api/v1/keys/${B1}/enc_keys?number=2&additional_slave_SAE_IDs=${B2}`),
        400,
        /only number and size/,
      );
      assertError(await a1.post(`/api/v1/keys/${B1}/enc_keys`, { numbr: 2 }), 400, /unknown field/);
      assert.deepEqual(await delivered(), before, 'no key was handed out');
    });

    it('dec_keys delivers once, all or nothing', async () => {
      const a1 = sites.sae('sae-a1');
      const b1 = sites.sae(B1);
      const keys = keysOf(await a1.post(`/api/v1/keys/${B1}/enc_keys`, { number: 2 }));
      const unknown = { key_ID: '00000000-0000-4000-8000-000000000000' };
      const mixed = await b1.post('/api/v1/keys/sae-a1/dec_keys', { key_IDs: [{ key_ID: keys[0]!.key_ID }, unknown] });
      assertError(mixed, 400, 'one or more keys specified are not found on KME');
      assertSameKeys(keysOf(await b1.post('/api/v1/keys/sae-a1/dec_keys', keyIds(keys))), keys, 'nothing was taken');
      assertError(
        await b1.post('/api/v1/keys/sae-a1/dec_keys', keyIds(keys)),
        400,
        'one or more keys specified are not found on KME',
      );
      assertError(await b1.get(`/api/v1/keys/sae-a1/dec_keys?key_ID=${keys[0]!.key_ID}`), 400, /not found/);
    });

    it('dec_keys by an SAE that is not a named slave is 401 unauthorized, and the keys stay', async () => {
      const a1 = sites.sae('sae-a1');
      const keys = keysOf(await a1.post(`/api/v1/keys/${B1}/enc_keys`, { number: 1 }));
      const intruder = await sites.sae(B2).post('/api/v1/keys/sae-a1/dec_keys', keyIds(keys));
      assert.equal(intruder.status, 401);
      assert.deepEqual(intruder.body, UNAUTHORIZED);
      const wrongMaster = await sites.sae(B1).post('/api/v1/keys/sae-a2/dec_keys', keyIds(keys));
      assertError(wrongMaster, 400, /not found/);
      assertSameKeys(keysOf(await sites.sae(B1).post('/api/v1/keys/sae-a1/dec_keys', keyIds(keys))), keys);
    });

    it('serves pairs at one KME and in the other direction', async () => {
      const local = keysOf(await sites.sae('sae-a1').post('/api/v1/keys/sae-a2/enc_keys', { number: 2 }));
      assertSameKeys(keysOf(await sites.sae('sae-a2').post('/api/v1/keys/sae-a1/dec_keys', keyIds(local))), local);
      const back = keysOf(await sites.sae(B2).get('/api/v1/keys/sae-a1/enc_keys?number=1'));
      assertSameKeys(keysOf(await sites.sae('sae-a1').post(`/api/v1/keys/${B2}/dec_keys`, keyIds(back))), back);
    });

    it('refuses unknown SAE IDs and odd path IDs with 400', async () => {
      const a1 = sites.sae('sae-a1');
      assertError(await a1.get('/api/v1/keys/sae-zz/status'), 400, /unknown SAE ID/);
      assertError(await a1.get('/api/v1/keys/sae%2Fb1/status'), 400);
      assertError(await a1.get('/api/v1/keys/%00/enc_keys'), 400);
      assertError(await a1.get('/api/v1/keys/sae-a1/status'), 400, /differ from the master/);
      assertError(await a1.get(`/api/v1/keys/${'x'.repeat(300)}/status`), 400);
    });
  });
}
