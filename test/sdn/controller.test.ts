import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { pino } from 'pino';
import { request } from 'undici';
import { topologyFromObject } from '../../src/config/topology-file.js';
import { loadControllerConfig, type ControllerConfig } from '../../src/sdn/controller/config.js';
import type { RestconfError } from '../../src/sdn/controller/restconf-client.js';
import { startController, type RunningController } from '../../src/sdn/controller/run.js';
import { nodeUuid } from '../../src/sdn/ids.js';
import { withController } from '../../src/dashboard/controller-panel.js';
import { NetworkCollector } from '../../src/dashboard/collector.js';
import { startDashboardServer } from '../../src/dashboard/server.js';
import { artifactPath, launchChromium } from '../helpers/browser.js';
import { agreeKeys } from '../helpers/agree-keys.js';
import { endPointsObject, pcepMessage, qkdObject, rpObject, TestPcc } from '../helpers/pcep-pcc.js';
import { eventually, startSites, type TwoSites } from '../helpers/two-kmes.js';

/**
 * ring:5 (kme-a … kme-e, node addresses 127.0.1.1 … 127.0.1.5) whose link a-b makes almost no key:
 * the controller reads the five KMEs' ETSI 015 interfaces, sees the empty link, and paths go round it.
 */
const relayPath = async (master: string, slave: string) => {
  const res = await sitesRef!.sae(master).get(`/api/v1/keys/${slave}/status`);
  return (res.body as { status_extension?: { qks_relay_path?: string[] } }).status_extension?.qks_relay_path;
};
let sitesRef: TwoSites | undefined;
const BIN = join(process.cwd(), 'bin', 'qks.js');
const RICH = { type: 'simulated', rate_bps: 500_000 };
const EMPTY = { type: 'simulated', rate_bps: 0.001 };

interface PathsAnswer {
  paths: Array<{ nodes: string[]; addresses: string[] }>;
}

const post = async (url: string, body: unknown) => {
  const res = await request(`${url}/api/v1/paths`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(body),
  });
  return { status: res.statusCode, body: (await res.body.json()) as PathsAnswer & { message?: string } };
};
const network = async (url: string) =>
  (await (await request(`${url}/api/v1/network`)).body.json()) as {
    nodes: Array<{ id: string; reachable: boolean; nodeAddress: string }>;
    links: Array<{ a: string; b: string; up: boolean; availableBits: Record<string, number> }>;
  };

describe('the SDN controller over five KMEs', () => {
  let sites: TwoSites;
  let cfg: ControllerConfig;
  let cfgFile = '';
  let running: RunningController | undefined;
  const log = pino({ level: 'silent' });
  before(async () => {
    const kmes = ['kme-a', 'kme-b', 'kme-c', 'kme-d', 'kme-e'];
    const topology = topologyFromObject({
      sites: kmes.map((kme) => ({ kme })),
      links: kmes.map((a, i) => ({ a, b: kmes[(i + 1) % 5]!, source: a === 'kme-a' ? EMPTY : RICH })),
    });
    sites = sitesRef = await startSites({ topology, operator: 'operator' });
    const op = sites.deployment.operator!;
    const file = join(sites.deployment.dir, 'controller.json');
    writeFileSync(
      file,
      JSON.stringify({
        kmes: sites.deployment.configs.map(({ kme, config }) => ({
          id: kme,
          url: `https://127.0.0.1:${config.sae_api.port}`,
          node_address: config.node_address,
        })),
        ca: sites.deployment.ca,
        cert: op.cert,
        key: op.key,
        pcep: { port: 0 },
        poll_interval_ms: 500,
      }),
    );
    cfg = loadControllerConfig(file);
    cfgFile = file;
    running = await startController(cfg, log);
  });
  after(async () => {
    await running?.stop();
    await sites.stop();
  });

  it('discovers every KME and link over ETSI 015, with their key availability', async () => {
    await eventually(async () => (await network(running!.url)).links.filter((l) => l.up).length === 5, 15_000, 'links');
    const view = await network(running!.url);
    assert.deepEqual(
      view.nodes.map((n) => [n.id, n.nodeAddress, n.reachable]),
      ['a', 'b', 'c', 'd', 'e'].map((x, i) => [`kme-${x}`, `127.0.1.${i + 1}`, true]),
    );
    const ab = view.links.find((l) => l.a === 'kme-a' && l.b === 'kme-b')!;
    assert.equal(ab.availableBits['kme-a'], 0, 'the empty link holds nothing');
    const cd = view.links.find((l) => l.a === 'kme-c' && l.b === 'kme-d')!;
    assert.ok(cd.availableBits['kme-c']! > 0 && cd.availableBits['kme-d']! > 0);
  });

  it('computes paths round the empty link, with constraints; bad requests are 400', async () => {
    await eventually(
      async () => (await post(running!.url, { source: 'kme-a', destination: 'kme-b' })).body.paths.length === 1,
      10_000,
      'a path',
    );
    const round = await post(running!.url, { source: 'kme-a', destination: 'kme-b' });
    assert.deepEqual(round.body.paths[0]!.nodes, ['kme-a', 'kme-e', 'kme-d', 'kme-c', 'kme-b']);
    const bounded = await post(running!.url, { source: '127.0.1.1', destination: '127.0.1.2', max_hops: 3 });
    assert.deepEqual(bounded.body.paths, [], 'four hops round, none within three');
    const two = await post(running!.url, { source: 'kme-b', destination: 'kme-e', paths: 2 });
    assert.equal(two.body.paths.length, 1, 'the other way round crosses the empty link');
    assert.equal((await post(running!.url, { source: 'kme-a', destination: 'kme-z' })).status, 400);
    assert.equal((await post(running!.url, { source: 'kme-a' })).status, 400);
  });

  it('answers a PCEP PCReq with the path as node addresses and the QE subobject', async () => {
    const pcc = await TestPcc.connect(running!.pcep.port);
    try {
      await pcc.establish();
      pcc.send(
        pcepMessage(3, rpObject(7), endPointsObject('127.0.1.1', '127.0.1.3'), qkdObject(32, 2, 0xfc, 1000, 10)),
      );
      const rep = await pcc.next();
      assert.equal(rep.type, 4, 'PCRep');
      const hops = [...rep.bytes.toString('hex').matchAll(/0108(7f0001\d\d)2000/g)].map((m) => m[1]);
      assert.deepEqual(hops, ['7f000101', '7f000105', '7f000104', '7f000103'], 'a, e, d, c');
      assert.ok(rep.bytes.toString('hex').endsWith('674a' + '00'.repeat(64) + '002002fc03e8000a'), 'the QE subobject');
    } finally {
      pcc.socket.destroy();
    }
  });

  it('keys keep flowing while the controller is down; restarted, it sees the same network', async () => {
    await running!.stop();
    running = undefined;
    await agreeKeys(sites, 'sae-a1', 'sae-c1', 'number=1');
    running = await startController(cfg, log);
    const view = await network(running.url);
    assert.equal(view.nodes.filter((n) => n.reachable).length, 5);
    assert.equal(view.links.length, 5);
  });

  it('centralized mode: installs a computed path in its first KME as a virtual link, which keys then take', async () => {
    const created = await request(`${running!.url}/api/v1/virtual-links`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ source: 'kme-b', destination: 'kme-d' }),
    });
    assert.equal(created.statusCode, 201);
    const { id, path } = (await created.body.json()) as { id: string; path: string[] };
    assert.deepEqual(path, ['kme-b', 'kme-c', 'kme-d']);
    const listed = (await (await request(`${running!.url}/api/v1/virtual-links`)).body.json()) as {
      virtual_links: Array<{ id: string; path: string[] }>;
    };
    assert.deepEqual(listed.virtual_links, [{ id, path }], 'kme-b shows it over ETSI 015');
    assert.deepEqual(await relayPath('sae-b1', 'sae-d1'), path);
    await agreeKeys(sites, 'sae-b1', 'sae-d1', 'number=1');
    // With the controller down, keys keep taking the installed path (it is on kme-b's disk).
    await running!.stop();
    running = undefined;
    await agreeKeys(sites, 'sae-b1', 'sae-d1', 'number=1');
    assert.deepEqual(await relayPath('sae-b1', 'sae-d1'), path);
    running = await startController(cfg, log);

    // A path of the controller's own making wins over link state, even a poor one.
    const kmeB = running!.controller.client('kme-b')!;
    const detour = ['kme-b', 'kme-a', 'kme-e', 'kme-d'];
    await running!.controller.install(id, detour);
    assert.deepEqual(await relayPath('sae-b1', 'sae-d1'), detour, 'a PUT replaces it');
    const link = (over: Record<string, unknown>) => ({
      'etsi-qkd-sdn-node:qkd_link': [
        {
          qkdl_id: '5b0f4d4e-0000-4000-8000-000000000001',
          qkdl_type: 'etsi-qkd-node-types:VIRT',
          qkdl_remote: { qkdn_id: nodeUuid('kme-d') },
          'qks-sdn-ext:path': ['kme-b', 'kme-c', 'kme-d'],
          ...over,
        },
      ],
    });
    const refused = async (body: unknown, status: number, why: RegExp) => {
      const err = await kmeB.write('POST', '/qkd_links', body).then(
        () => null,
        (e: unknown) => e as RestconfError,
      );
      assert.equal(err?.status, status, `${why}`);
      assert.match(err!.message, why);
    };
    await refused(link({ qkdl_type: 'etsi-qkd-node-types:PHYS' }), 400, /only virtual links/);
    await refused(link({ 'qks-sdn-ext:path': ['kme-b', 'kme-d'] }), 400, /no QKD link to kme-d/);
    await refused(link({ 'qks-sdn-ext:path': ['kme-b', 'kme-c', 'kme-e'] }), 400, /ends at kme-e/);
    await refused(link({ 'qks-sdn-ext:path': ['kme-c', 'kme-d'] }), 400, /starts there/);
    await refused(link({ qkdl_id: id }), 409, /exists already/);

    const removed = await request(`${running!.url}/api/v1/virtual-links/${id}`, { method: 'DELETE' });
    assert.equal(removed.statusCode, 204);
    assert.equal((await request(`${running!.url}/api/v1/virtual-links/${id}`, { method: 'DELETE' })).statusCode, 404);
    assert.deepEqual(await relayPath('sae-b1', 'sae-d1'), ['kme-b', 'kme-c', 'kme-d'], 'link state again');
  });

  it('the dashboard shows what the controller sees and the paths it installed, and when it stops answering', async () => {
    const op = sites.deployment.operator!;
    const collector = new NetworkCollector({
      urls: sites.deployment.configs.map((c) => `https://127.0.0.1:${c.config.sae_api.port}`),
      client: { ca: sites.deployment.ca, cert: op.cert, key: op.key },
    });
    let controllerUrl: string | undefined = running!.url;
    const dashboard = await startDashboardServer({
      view: withController(
        () => collector.view(),
        () => controllerUrl,
      ),
      log,
    });
    const browser = await launchChromium();
    try {
      const page = await browser.context.newPage();
      await page.goto(dashboard.url);
      const [id, path] = ['4f6a3c52-0000-4000-8000-000000000002', ['kme-c', 'kme-d']] as const;
      await running!.controller.install(id, path);
      await page.locator(`[data-virtual-link="${path.join(' ')}"]`).waitFor({ timeout: 15_000 });
      assert.match(
        (await page.locator('#controller-summary').textContent()) ?? '',
        /^5\/5 KMEs read over ETSI 015 · 5\/5 links up/,
      );
      await page.screenshot({ path: artifactPath('dashboard', '8-sdn-controller.png'), fullPage: true });
      await running!.controller.uninstall(id);
      controllerUrl = 'http://127.0.0.1:9'; // nothing listens there
      await page.locator('#controller-summary', { hasText: 'not answering' }).waitFor({ timeout: 15_000 });
    } finally {
      await browser.close();
      await dashboard.close();
      await collector.close();
    }
  });

  it('qks controller --config runs it as a command, and says what is wrong with a bad file', async () => {
    const bad = join(sites.deployment.dir, 'bad-controller.json');
    writeFileSync(bad, JSON.stringify({ kmes: [{ id: 'kme-a', url: 'http://x', node_address: 'nowhere' }] }));
    const refused = spawnSync(process.execPath, [BIN, 'controller', '--config', bad], { encoding: 'utf8' });
    assert.equal(refused.status, 2, 'a configuration error, as for qks kme');
    // One problem a line, each naming its key, under a heading naming the file (as qks kme's).
    assert.equal(
      refused.stderr,
      `qks controller: invalid controller configuration ${bad}:\n` +
        '  missing key "ca" at the top level\n' +
        '  missing key "cert" at the top level\n' +
        '  missing key "key" at the top level\n' +
        '  kmes[0].url must be text matching ^https:// (not "http://x")\n' +
        '  kmes[0].node_address must be text matching ^(\\d{1,3}\\.){3}\\d{1,3}$ (not "nowhere")\n',
    );
    const cli = spawn(process.execPath, [BIN, 'controller', '--config', cfgFile], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    cli.stdout.on('data', (d: Buffer) => (out += d.toString()));
    const exited = new Promise<number | null>((resolve) => cli.on('exit', resolve));
    try {
      await eventually(() => /controller API (http:\S+), PCEP/.test(out), 15_000, 'the controller command');
      const url = /controller API (http:\S+),/.exec(out)![1]!;
      await eventually(async () => (await network(url)).nodes.every((n) => n.reachable), 10_000, 'its view');
    } finally {
      cli.kill('SIGTERM');
    }
    assert.equal(await exited, 0, 'SIGTERM stops it cleanly');
  });

  it('marks a KME that stops answering, and routes round it', async () => {
    await sites.stopKme('kme-d');
    try {
      await eventually(
        async () => (await network(running!.url)).nodes.find((n) => n.id === 'kme-d')?.reachable === false,
        10_000,
        'kme-d unreachable',
      );
      assert.deepEqual((await post(running!.url, { source: 'kme-a', destination: 'kme-c' })).body.paths, []);
      const eToC = await post(running!.url, { source: 'kme-e', destination: 'kme-c' });
      assert.deepEqual(eToC.body.paths, [], 'every way from e to c crosses kme-d or the empty link');
    } finally {
      await sites.startKme('kme-d');
    }
    await eventually(
      async () => (await post(running!.url, { source: 'kme-a', destination: 'kme-c' })).body.paths.length === 1,
      15_000,
      'the path through kme-d again',
    );
  });
});
