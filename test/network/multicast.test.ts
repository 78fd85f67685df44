import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { builtInTopology } from '../../src/domain/topology.js';
import type { WireKeys } from '../helpers/agree-keys.js';
import { BlockLedger } from '../helpers/block-ledger.js';
import { assertSameKeys } from '../helpers/redact.js';
import { recordDeliveredKeys } from '../helpers/log-leaks.js';
import { eventually, startSites, type TwoSites } from '../helpers/two-kmes.js';

/** enc_keys for `slaves` (the first in the path, the rest as additional_slave_SAE_IDs). */
async function multicastKeys(sites: TwoSites, master: string, slaves: readonly string[], number = 2) {
  const [slave, ...more] = slaves;
  return sites
    .sae(master)
    .post(`/api/v1/keys/${slave}/enc_keys`, { number, size: 256, additional_slave_SAE_IDs: more });
}

/** Keys for every slave, asked again until the links have material; each slave fetches the same keys once. */
async function agreeAcross(sites: TwoSites, master: string, slaves: readonly string[], number = 2): Promise<WireKeys> {
  let got = { status: 0, body: null as unknown };
  await eventually(
    async () => (got = await multicastKeys(sites, master, slaves, number)).status === 200,
    20_000,
    `keys from ${master} for ${slaves.join(', ')}`,
  );
  const keys = (got.body as { keys: WireKeys }).keys;
  recordDeliveredKeys(keys.map((k) => k.key));
  const ids = { key_IDs: keys.map((k) => ({ key_ID: k.key_ID })) };
  for (const slave of slaves) {
    const fetched = await sites.sae(slave).post(`/api/v1/keys/${master}/dec_keys`, ids);
    assert.equal(fetched.status, 200, `${slave} fetches: ${JSON.stringify(fetched.body)}`);
    assertSameKeys((fetched.body as { keys: WireKeys }).keys, keys, `${master} → ${slave}`);
    const again = await sites.sae(slave).post(`/api/v1/keys/${master}/dec_keys`, ids);
    assert.equal(again.status, 400, `${slave}: delivered once`);
  }
  return keys;
}

const readyAt = async (ledger: BlockLedger, kme: string) => (await ledger.stores.get(kme)!.countKeys()).ready;

describe('multicast across sites on star:5 (hub kme-a, leaves kme-b to kme-e)', () => {
  const ledger = new BlockLedger();
  let sites: TwoSites;
  before(async () => {
    sites = await startSites({ topology: builtInTopology('star:5'), wrapStore: ledger.wrap });
  });
  after(() => sites.stop());

  it('a master at a leaf gets keys for slaves at three other leaves, at the hub and at its own site: all get the same keys, once', async () => {
    await agreeAcross(sites, 'sae-b1', ['sae-c1', 'sae-d1', 'sae-e1', 'sae-a1', 'sae-b2']);
    assert.deepEqual(ledger.reused(), []);
    // The hub took kme-b's blocks (the keys themselves) and cut a fresh pad and MAC key on each
    // other leaf's link; each leaf took exactly those.
    for (const leaf of ['c', 'd', 'e']) {
      const link = `link-a-${leaf}`;
      assert.ok(ledger.of('kme-a', link).length > 0, `${link} carried the keys`);
      assert.deepEqual(
        ledger.of('kme-a', link),
        ledger.of(`kme-${leaf}`, link),
        `${link}: the same blocks at both ends`,
      );
    }
    for (const kme of ['kme-a', 'kme-b', 'kme-c', 'kme-d', 'kme-e']) assert.equal(await readyAt(ledger, kme), 0, kme);
  });

  it('a master at the hub: one branch carries the keys’ own blocks, another a masked copy', async () => {
    await agreeAcross(sites, 'sae-a1', ['sae-b1', 'sae-c1', 'sae-a2'], 3);
    assert.deepEqual(ledger.reused(), []);
  });

  it('a branch whose KME is down: 503, every other branch drops the keys, nothing is reused; then it works again', async () => {
    await sites.stopKme('kme-e');
    try {
      const refused = await multicastKeys(sites, 'sae-b1', ['sae-c1', 'sae-e1', 'sae-b2']);
      assert.equal(refused.status, 503, JSON.stringify(refused.body));
      assert.match((refused.body as { message: string }).message, /kme-e/);
      // Whatever reached kme-c (or the hub) goes again, by the cancels that follow the branches.
      await eventually(async () => (await readyAt(ledger, 'kme-c')) === 0, 15_000, 'kme-c dropping the keys');
      assert.equal(await readyAt(ledger, 'kme-b'), 0, 'the local slave’s copy went too');
      assert.equal(await readyAt(ledger, 'kme-a'), 0);
    } finally {
      await sites.startKme('kme-e');
    }
    await agreeAcross(sites, 'sae-b1', ['sae-c1', 'sae-e1', 'sae-b2'], 1);
    assert.deepEqual(ledger.reused(), []);
  });

  it('a branch that fails after another holds the keys: the cancel follows the tree and every copy goes', async () => {
    let failed = 0;
    let heldAtC = 0;
    ledger.beforeCall = async (kme, method) => {
      if (kme !== 'kme-e' || method !== 'relayIn' || failed++ > 0) return;
      // kme-c's branch runs beside this one: fail only once kme-c holds the keys.
      await eventually(async () => (heldAtC = await readyAt(ledger, 'kme-c')) > 0, 5_000, 'kme-c holding the keys');
      throw new Error('disk full (injected)');
    };
    try {
      const refused = await multicastKeys(sites, 'sae-b1', ['sae-c1', 'sae-e1', 'sae-a1']);
      assert.equal(refused.status, 503, JSON.stringify(refused.body));
      assert.equal(failed, 1, 'kme-e was reached');
      assert.equal(heldAtC, 2, 'kme-c held both keys');
      await eventually(async () => (await readyAt(ledger, 'kme-c')) === 0, 15_000, 'kme-c dropping the keys');
      assert.equal(await readyAt(ledger, 'kme-a'), 0, 'the hub dropped its copy for sae-a1');
    } finally {
      ledger.beforeCall = undefined;
    }
    await agreeAcross(sites, 'sae-b1', ['sae-c1', 'sae-e1', 'sae-a1'], 1);
    assert.deepEqual(ledger.reused(), []);
  });

  it('an unknown slave among them is refused, and nothing is taken', async () => {
    const before = await ledger.stores.get('kme-c')!.countBlocks('link-a-c', 'kme-a');
    const refused = await multicastKeys(sites, 'sae-b1', ['sae-c1', 'sae-nobody']);
    assert.equal(refused.status, 400);
    assert.equal(await ledger.stores.get('kme-c')!.countBlocks('link-a-c', 'kme-a'), before);
  });
});

describe('multicast on line:4: slaves at the source, on the way, and at the end', () => {
  const ledger = new BlockLedger();
  let sites: TwoSites;
  before(async () => {
    sites = await startSites({ topology: builtInTopology('line:4'), wrapStore: ledger.wrap });
  });
  after(() => sites.stop());

  it('local slaves and one three hops away share a key: kme-b and kme-c pass it on, kme-b keeps it for its own', async () => {
    await agreeAcross(sites, 'sae-a1', ['sae-d1', 'sae-a2']);
    await agreeAcross(sites, 'sae-a1', ['sae-d1', 'sae-b1', 'sae-a2', 'sae-c2']);
    await agreeAcross(sites, 'sae-d2', ['sae-a1', 'sae-c1']);
    assert.deepEqual(ledger.reused(), []);
  });
});
