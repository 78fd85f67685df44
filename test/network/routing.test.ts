import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { topologyFromObject } from '../../src/config/topology-file.js';
import { builtInTopology } from '../../src/domain/topology.js';
import { agreeKeys, type WireKeys } from '../helpers/agree-keys.js';
import { assertSameKeys } from '../helpers/redact.js';
import { eventually, startSites, type TwoSites } from '../helpers/two-kmes.js';

const pathOf = async (sites: TwoSites, master: string, slave: string) => {
  const res = await sites.sae(master).get(`/api/v1/keys/${slave}/status`);
  return (res.body as { status_extension?: { qks_relay_path?: string[] } }).status_extension?.qks_relay_path;
};

/**
 * ring:4 with a rich side (a-d-c, 1 Mbit/s) and a poor one (a-b-c, 40 kbit/s): keys from a to c
 * take the rich side while it is there, the poor one while kme-d is down, and the rich one again.
 * (By hop count alone the tie would go to kme-b, the lower ID.)
 */
describe('routing by key availability', () => {
  let sites: TwoSites;
  before(async () => {
    const rich = { type: 'simulated', rate_bps: 1_000_000 };
    const poor = { type: 'simulated', rate_bps: 40_000 };
    const topology = topologyFromObject({
      sites: ['kme-a', 'kme-b', 'kme-c', 'kme-d'].map((kme) => ({ kme })),
      links: [
        { a: 'kme-a', b: 'kme-b', source: poor },
        { a: 'kme-b', b: 'kme-c', source: poor },
        { a: 'kme-c', b: 'kme-d', source: rich },
        { a: 'kme-a', b: 'kme-d', source: rich },
      ],
    });
    sites = await startSites({ topology });
  });
  after(() => sites.stop());

  it('takes the path whose links hold more key material, though both are two hops', async () => {
    await eventually(async () => (await pathOf(sites, 'sae-a1', 'sae-c1'))?.[1] === 'kme-d', 15_000, 'a to c via d');
    await eventually(async () => (await pathOf(sites, 'sae-c1', 'sae-a1'))?.[1] === 'kme-d', 15_000, 'c to a via d');
    await agreeKeys(sites, 'sae-a1', 'sae-c1');
  });

  it('goes round a KME that is down once its adverts stop, and back when it returns', async () => {
    await sites.stopKme('kme-d');
    await eventually(
      async () => (await pathOf(sites, 'sae-a1', 'sae-c1'))?.join() === 'kme-a,kme-b,kme-c',
      15_000,
      'the path round kme-d',
    );
    await eventually(
      async () => (await sites.sae('sae-a1').get('/api/v1/keys/sae-c1/enc_keys')).status === 200,
      15_000,
      'keys over the poor side',
    );
    await agreeKeys(sites, 'sae-a1', 'sae-c1');
    await sites.startKme('kme-d');
    await eventually(
      async () => (await pathOf(sites, 'sae-a1', 'sae-c1'))?.join() === 'kme-a,kme-d,kme-c',
      15_000,
      'the path through kme-d again',
    );
    await agreeKeys(sites, 'sae-a1', 'sae-c1');
  });

  it('status counts what the whole path holds: no more than its poorest hop advertised', async () => {
    const count = async (slave: string) =>
      ((await sites.sae('sae-a1').get(`/api/v1/keys/${slave}/status`)).body as { stored_key_count: number })
        .stored_key_count;
    // Through kme-d both hops are rich: a's share of a-d bounds the count.
    const [rich, firstHop] = [await count('sae-c1'), await count('sae-d1')];
    assert.ok(rich <= firstHop, `${rich} ≤ ${firstHop}`);
    await sites.stopKme('kme-d');
    await eventually(
      async () => (await pathOf(sites, 'sae-a1', 'sae-c1'))?.join() === 'kme-a,kme-b,kme-c',
      15_000,
      'the path round kme-d',
    );
    // Through kme-b: no more than kme-b advertised of its share of the poor link b-c.
    const poor = await count('sae-c1');
    assert.ok(poor < rich, `the poor path holds less: ${poor} < ${rich}`);
    await sites.startKme('kme-d');
  });
});

/** ring:4 (a-b-c-d) whose link a-b makes `rateBps` and the others 1 Mbit/s. */
const ringWithPoorLink = (rateBps: number) => {
  const rich = { type: 'simulated', rate_bps: 1_000_000 };
  return topologyFromObject({
    sites: ['kme-a', 'kme-b', 'kme-c', 'kme-d'].map((kme) => ({ kme })),
    links: [
      { a: 'kme-a', b: 'kme-b', source: { type: 'simulated', rate_bps: rateBps } },
      { a: 'kme-b', b: 'kme-c', source: rich },
      { a: 'kme-c', b: 'kme-d', source: rich },
      { a: 'kme-a', b: 'kme-d', source: rich },
    ],
  });
};

/** ring:4 whose link a-b makes almost nothing: keys from a for b go round, and status says so. */
describe('a common link that holds nothing', () => {
  let sites: TwoSites;
  before(async () => {
    sites = await startSites({ topology: ringWithPoorLink(0.001) });
  });
  after(() => sites.stop());

  it('status for the neighbour names the path a request takes round it, and counts what that path holds', async () => {
    let body = { stored_key_count: 0, status_extension: {} as Record<string, unknown> };
    await eventually(
      async () => {
        body = (await sites.sae('sae-a1').get('/api/v1/keys/sae-b1/status')).body as typeof body;
        return body.stored_key_count > 0;
      },
      15_000,
      'a count on the path round a-b',
    );
    assert.deepEqual(body.status_extension['qks_relay_path'], ['kme-a', 'kme-d', 'kme-c', 'kme-b']);
    assert.equal(body.status_extension['qks_link_ID'], 'link-a-d', 'the first hop, not the empty common link');
    await agreeKeys(sites, 'sae-a1', 'sae-b1', 'number=1');
  });
});

/** ring:4 whose link a-b is poor and the rest rich: keys from a for b go round when a-b runs dry. */
describe('a common link that runs dry', () => {
  let sites: TwoSites;
  before(async () => {
    sites = await startSites({ topology: ringWithPoorLink(40_000) });
    await new Promise((r) => setTimeout(r, 3000)); // material on the rich links
  });
  after(() => sites.stop());

  it('goes round a common link that has run out of key material, through the network', async () => {
    // a-b makes 40 kbit/s: kme-a's share of it holds a few hundred keys; the other links 1 Mbit/s.
    // Short on the common link: fewer than 64 keys there, or none (then status names the way round).
    const short = async () => {
      const body = (await sites.sae('sae-a1').get('/api/v1/keys/sae-b1/status')).body as {
        stored_key_count: number;
        status_extension: { qks_relay_path?: string[] };
      };
      return body.status_extension.qks_relay_path !== undefined || body.stored_key_count < 64;
    };
    let drained = false;
    for (let i = 0; i < 24; i++) {
      const got = await sites.sae('sae-a1').get('/api/v1/keys/sae-b1/enc_keys?number=64');
      assert.equal(got.status, 200, `request ${i}: ${JSON.stringify(got.body)}`);
      const keys = (got.body as { keys: WireKeys }).keys;
      const fetched = await sites.sae('sae-b1').post('/api/v1/keys/sae-a1/dec_keys', {
        key_IDs: keys.map((k) => ({ key_ID: k.key_ID })),
      });
      assertSameKeys((fetched.body as { keys: WireKeys }).keys, keys, `request ${i}`);
      if (await short()) drained = true;
    }
    assert.ok(drained, 'the common link ran short, and keys still came (round by kme-d and kme-c)');
  });
});

describe('a 12-site ring', () => {
  let sites: TwoSites;
  before(async () => {
    sites = await startSites({ topology: builtInTopology('ring:12'), rateBps: 200_000 });
  });
  after(() => sites.stop());

  it('every site gets keys for the sites farthest from it, up to six hops, equal at both ends', async () => {
    const letters = 'abcdefghijkl';
    for (let i = 0; i < 12; i++) {
      const far = letters[(i + 6) % 12]!;
      const master = `sae-${letters[i]}1`;
      const slave = `sae-${far}1`;
      await eventually(
        async () => (await sites.sae(master).get(`/api/v1/keys/${slave}/status`)).status === 200,
        10_000,
        'status',
      );
      const path = await pathOf(sites, master, slave);
      assert.equal(path?.length, 7, `${master} → ${slave}: ${path?.join(' ')}`);
      await agreeKeys(sites, master, slave, 'number=1');
    }
  });
});

/** Twelve sites in a ring, with a chord from every other site to the one five further on. */
describe('a 12-site mesh', () => {
  const letters = 'abcdefghijkl';
  const kme = (i: number) => `kme-${letters[(i + 12) % 12]}`;
  let sites: TwoSites;
  before(async () => {
    const source = { type: 'simulated', rate_bps: 200_000 };
    const ring = Array.from({ length: 12 }, (_, i) => ({ a: kme(i), b: kme(i + 1), source }));
    const chords = Array.from({ length: 6 }, (_, i) => ({ a: kme(2 * i), b: kme(2 * i + 5), source }));
    const topology = topologyFromObject({
      sites: Array.from({ length: 12 }, (_, i) => ({ kme: kme(i) })),
      links: [...ring, ...chords],
    });
    sites = await startSites({ topology });
  });
  after(() => sites.stop());

  it('every site gets keys for the one opposite on the ring over the chords, two hops, equal at both ends', async () => {
    for (let i = 0; i < 12; i++) {
      const master = `sae-${letters[i]}1`;
      const slave = `sae-${letters[(i + 6) % 12]}1`;
      await eventually(
        async () => (await sites.sae(master).get(`/api/v1/keys/${slave}/status`)).status === 200,
        10_000,
        'status',
      );
      const path = await pathOf(sites, master, slave);
      assert.equal(path?.length, 3, `${master} → ${slave}: ${path?.join(' ')} (six hops round the ring)`);
      await agreeKeys(sites, master, slave, 'number=1');
    }
  });

  it('one key for slaves at four far sites reaches each by its branch of one tree', async () => {
    const slaves = ['sae-g1', 'sae-d1', 'sae-j2', 'sae-h1'];
    let got = { status: 0, body: null as unknown };
    await eventually(
      async () =>
        (got = await sites.sae('sae-a1').post('/api/v1/keys/sae-g1/enc_keys', {
          additional_slave_SAE_IDs: slaves.slice(1),
        })).status === 200,
      15_000,
      'multicast keys',
    );
    const keys = (got.body as { keys: WireKeys }).keys;
    for (const slave of slaves) {
      const fetched = await sites.sae(slave).post('/api/v1/keys/sae-a1/dec_keys', {
        key_IDs: keys.map((k) => ({ key_ID: k.key_ID })),
      });
      assert.equal(fetched.status, 200, slave);
      assertSameKeys((fetched.body as { keys: WireKeys }).keys, keys, `sae-a1 → ${slave}`);
    }
  });
});
