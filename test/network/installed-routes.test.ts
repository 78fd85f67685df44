import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { builtInTopology } from '../../src/domain/topology.js';
import { InstalledRoutes } from '../../src/kme/installed-routes.js';
import { agreeKeys } from '../helpers/agree-keys.js';
import { BlockLedger } from '../helpers/block-ledger.js';
import { startSites, type TwoSites } from '../helpers/two-kmes.js';

const pathOf = async (sites: TwoSites, master: string, slave: string) => {
  const res = await sites.sae(master).get(`/api/v1/keys/${slave}/status`);
  return (res.body as { status_extension?: { qks_relay_path?: string[] } }).status_extension?.qks_relay_path;
};

const LONG_WAY = ['kme-a', 'kme-e', 'kme-d', 'kme-c'];

describe('routes an SDN controller installs (centralized mode), on ring:5', () => {
  const ledger = new BlockLedger();
  let sites: TwoSites;
  before(async () => {
    sites = await startSites({ topology: builtInTopology('ring:5'), wrapStore: ledger.wrap });
  });
  after(() => sites.stop());
  const routes = () => sites.kmes.get('kme-a')!.installedRoutes;

  it('keys take the installed path instead of the one link state chooses, and only that path', async () => {
    assert.deepEqual(await pathOf(sites, 'sae-a1', 'sae-c1'), ['kme-a', 'kme-b', 'kme-c'], 'link state: by kme-b');
    // The long way round: three hops, which link state never takes while the short side works.
    assert.equal(routes().install('virt-1', LONG_WAY), true);
    assert.equal(routes().install('virt-1', ['kme-a', 'kme-b', 'kme-c']), false, 'an ID is installed once');
    assert.deepEqual(await pathOf(sites, 'sae-a1', 'sae-c1'), LONG_WAY);
    const before = ledger.of('kme-b', 'link-b-c').length;
    await agreeKeys(sites, 'sae-a1', 'sae-c1', 'number=3');
    assert.ok(ledger.of('kme-d', 'link-c-d').length > 0, 'the keys went through kme-e and kme-d');
    assert.equal(ledger.of('kme-b', 'link-b-c').length, before, 'and not through kme-b');
  });

  it('outlives a restart of the KME; removed, link state routes again', async () => {
    await sites.stopKme('kme-a');
    await sites.startKme('kme-a');
    assert.deepEqual(await pathOf(sites, 'sae-a1', 'sae-c1'), LONG_WAY);
    assert.equal(routes().remove('virt-1'), true);
    assert.equal(routes().remove('virt-1'), false);
    assert.equal((await pathOf(sites, 'sae-a1', 'sae-c1'))?.length, 3, 'two hops again, by link state');
    await agreeKeys(sites, 'sae-a1', 'sae-c1', 'number=1');
    assert.deepEqual(ledger.reused(), []);
  });
});

describe('installed routes on disk', () => {
  const dir = mkdtempSync(join(tmpdir(), 'qks-routes-'));
  after(() => rmSync(dir, { recursive: true, force: true }));

  it('refuse paths that do not start here, pass a KME twice, or are too short; keep the rest across a reopen', () => {
    const file = join(dir, 'routes.json');
    const routes = new InstalledRoutes('kme-a', file);
    assert.throws(() => routes.install('x', ['kme-b', 'kme-c']), /starts there/);
    assert.throws(() => routes.install('x', ['kme-a', 'kme-b', 'kme-a']), /twice/);
    assert.throws(() => routes.install('x', ['kme-a']), /2 to 32/);
    routes.install('old', ['kme-a', 'kme-b', 'kme-c'], 1000);
    routes.install('new', ['kme-a', 'kme-d', 'kme-c'], 2000);
    assert.deepEqual(routes.pathTo('kme-c'), ['kme-a', 'kme-d', 'kme-c'], 'the newest to a target wins');
    const again = new InstalledRoutes('kme-a', file);
    assert.deepEqual(
      again.list().map((r) => r.id),
      ['old', 'new'],
    );
    assert.equal(JSON.parse(readFileSync(file, 'utf8')).length, 2);
  });
});
