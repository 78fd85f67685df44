import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { builtInTopology } from '../../src/domain/topology.js';
import { BlockLedger } from '../helpers/block-ledger.js';
import { agreeKeys, type WireKeys } from '../helpers/agree-keys.js';
import { eventually, startSites, type TwoSites } from '../helpers/two-kmes.js';

describe('trusted-node relay on line:4 (kme-a - kme-b - kme-c - kme-d)', () => {
  const ledger = new BlockLedger();
  let sites: TwoSites;
  before(async () => {
    sites = await startSites({ topology: builtInTopology('line:4'), wrapStore: ledger.wrap });
  });
  after(() => sites.stop());

  it('a master at kme-a gets keys for a slave at kme-d, three hops away; the slave gets the same keys', async () => {
    const status = await sites.sae('sae-a1').get('/api/v1/keys/sae-d1/status');
    assert.equal(status.status, 200, JSON.stringify(status.body));
    const body = status.body as { target_KME_ID: string; status_extension: Record<string, unknown> };
    assert.equal(body.target_KME_ID, 'kme-d');
    assert.deepEqual(body.status_extension['qks_relay_path'], ['kme-a', 'kme-b', 'kme-c', 'kme-d']);
    const keys = await agreeKeys(sites, 'sae-a1', 'sae-d1', 'number=3&size=512');
    assert.equal(keys.length, 3);
    assert.ok(keys.every((k) => Buffer.from(k.key, 'base64').length === 64));
    // Delivered once: asking again is refused.
    const again = await sites.sae('sae-d1').post('/api/v1/keys/sae-a1/dec_keys', {
      key_IDs: keys.map((k) => ({ key_ID: k.key_ID })),
    });
    assert.equal(again.status, 400);
  });

  it('every pair of sites, both ways, gets keys equal at both ends and unlike all others', async () => {
    const sitesOf = ['a', 'b', 'c', 'd'];
    const all: WireKeys = [];
    for (const m of sitesOf) {
      for (const s of sitesOf) if (m !== s) all.push(...(await agreeKeys(sites, `sae-${m}1`, `sae-${s}2`, 'number=1')));
    }
    assert.equal(new Set(all.map((k) => k.key)).size, all.length, 'no two keys share bytes');
    assert.equal(new Set(all.map((k) => k.key_ID)).size, all.length);
  });

  it('no block of any link was used twice at either end, and both ends of each link used the same blocks', () => {
    assert.deepEqual(ledger.reused(), []);
    for (const [a, b] of [
      ['kme-a', 'kme-b'],
      ['kme-b', 'kme-c'],
      ['kme-c', 'kme-d'],
    ] as const) {
      const link = `link-${a.slice(4)}-${b.slice(4)}`;
      assert.ok(ledger.of(a, link).length > 0, `${link} was used`);
      assert.deepEqual(ledger.of(a, link), ledger.of(b, link), `${link}: the same blocks at both ends`);
    }
  });

  it('a relay ending at a KME that is down fails with 503 and changes nothing; the path works again once it is back', async () => {
    await sites.stopKme('kme-d');
    try {
      const refused = await sites.sae('sae-a1').get('/api/v1/keys/sae-d1/enc_keys');
      assert.equal(refused.status, 503, JSON.stringify(refused.body));
      assert.match((refused.body as { message: string }).message, /peer KME kme-b could not record the keys: .*kme-d/);
    } finally {
      await sites.startKme('kme-d');
    }
    await agreeKeys(sites, 'sae-a1', 'sae-d1', 'number=1');
    assert.deepEqual(ledger.reused(), []);
  });
});

describe('trusted-node relay on star:5 (hub kme-a)', () => {
  const ledger = new BlockLedger();
  let sites: TwoSites;
  before(async () => {
    sites = await startSites({ topology: builtInTopology('star:5'), wrapStore: ledger.wrap });
  });
  after(() => sites.stop());

  it('every pair of sites, both ways, gets keys through the hub or its own link, equal at both ends', async () => {
    const all: WireKeys = [];
    for (const m of 'abcde')
      for (const s of 'abcde') if (m !== s) all.push(...(await agreeKeys(sites, `sae-${m}1`, `sae-${s}2`, 'number=1')));
    assert.equal(new Set(all.map((k) => k.key)).size, all.length, 'no two keys share bytes');
    assert.deepEqual(ledger.reused(), []);
  });
});

describe('trusted-node relay on ring:5 with kme-b untrusted', () => {
  const ledger = new BlockLedger();
  let sites: TwoSites;
  before(async () => {
    const ring = builtInTopology('ring:5');
    const topology = { ...ring, sites: ring.sites.map((s) => (s.kme === 'kme-b' ? { ...s, trusted: false } : s)) };
    sites = await startSites({ topology, wrapStore: ledger.wrap });
  });
  after(() => sites.stop());

  it('keys from kme-a to kme-c go the long way round (a - e - d - c), never through kme-b', async () => {
    const status = await sites.sae('sae-a1').get('/api/v1/keys/sae-c1/status');
    const ext = (status.body as { status_extension: Record<string, unknown> }).status_extension;
    assert.deepEqual(ext['qks_relay_path'], ['kme-a', 'kme-e', 'kme-d', 'kme-c']);
    await agreeKeys(sites, 'sae-a1', 'sae-c1');
    assert.deepEqual(ledger.of('kme-b', 'link-a-b'), [], 'kme-b consumed nothing');
    assert.deepEqual(ledger.of('kme-b', 'link-b-c'), []);
  });

  it('kme-b still gets keys of its own, directly and relayed', async () => {
    await agreeKeys(sites, 'sae-b1', 'sae-a1');
    await agreeKeys(sites, 'sae-d1', 'sae-b1');
    assert.deepEqual(ledger.reused(), []);
  });
});

describe('a relay whose answer never comes back in time', () => {
  const ledger = new BlockLedger();
  let sites: TwoSites;
  before(async () => {
    sites = await startSites({ topology: builtInTopology('line:4'), wrapStore: ledger.wrap });
  });
  after(() => sites.stop());

  it('503 for the master; the cancel goes hop by hop to the target, which drops the key it stored', async () => {
    await agreeKeys(sites, 'sae-a1', 'sae-d1', 'number=1');
    const stored = () => ledger.stores.get('kme-d')!.countKeys();
    assert.deepEqual(await stored(), { reserved: 0, ready: 0 });
    // kme-d stores the key, then answers after the 5 s every KME waits for a peer.
    let slow = true;
    let held = 0;
    ledger.afterClaim = async (kme) => {
      if (kme !== 'kme-d' || !slow) return;
      slow = false;
      held = (await stored()).ready;
      await new Promise((r) => setTimeout(r, 6000));
    };
    const failed = await sites.sae('sae-a1').get('/api/v1/keys/sae-d1/enc_keys');
    assert.equal(failed.status, 503, JSON.stringify(failed.body));
    assert.equal(held, 1, 'kme-d had stored the key');
    const lost = ledger.claimedKeyIds.get('kme-d')!.at(-1)!;
    await eventually(async () => (await stored()).ready === 0, 15_000, 'kme-d dropping the key');
    const fetch = await sites.sae('sae-d1').get(`/api/v1/keys/sae-a1/dec_keys?key_ID=${lost}`);
    assert.equal(fetch.status, 400, 'never delivered');
    // Nothing was reused, and the path works again.
    await agreeKeys(sites, 'sae-a1', 'sae-d1', 'number=1');
    assert.deepEqual(ledger.reused(), []);
  });
});
