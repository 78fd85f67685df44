import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { builtInTopology } from '../../src/domain/topology.js';
import type { KmeOverview } from '../../src/kme/observability/overview.js';
import { APPS_FILE } from '../../src/sdn/app-registry.js';
import { nodeUuid, pairAppUuid, physLinkUuid, virtLinkUuid } from '../../src/sdn/ids.js';
import { KEY_AVAILABILITY, type QkdNode } from '../../src/sdn/node-model.js';
import { firstProblem, validateNodeDocument } from '../../src/sdn/node-schema.js';
import { agreeKeys } from '../helpers/agree-keys.js';
import { operatorAt, parseMetrics } from '../helpers/operator.js';
import { TestClient, type HttpResult } from '../helpers/sae-client.js';
import { eventually, startSites, type TwoSites } from '../helpers/two-kmes.js';

const NODE = '/restconf/data/etsi-qkd-sdn-node:qkd_node';
const APPS = `${NODE}/qkd_applications`;
const T = 'etsi-qkd-node-types';
const YANG_JSON = { 'content-type': 'application/yang-data+json' };
const BLOCK_BITS = 256;
const CAPACITY = 64;

/** Asserts an RFC 8040 error answer: status, media type and one `ietf-restconf:errors` entry. */
function assertRestconfError(res: HttpResult, status: number, tag: string, what: string): void {
  assert.equal(res.status, status, `${what}: ${res.text}`);
  assert.match(String(res.headers['content-type']), /^application\/yang-data\+json/, what);
  const errors = (res.body as { 'ietf-restconf:errors'?: { error: Array<Record<string, string>> } })[
    'ietf-restconf:errors'
  ];
  assert.ok(errors, `${what}: an ietf-restconf:errors body`);
  assert.equal(errors.error.length, 1);
  assert.equal(errors.error[0]!['error-tag'], tag, what);
  assert.ok(['protocol', 'application', 'transport'].includes(errors.error[0]!['error-type']!), what);
  assert.ok(errors.error[0]!['error-message'], what);
}

const appBody = (appId: string, over: Record<string, unknown> = {}) => ({
  'etsi-qkd-sdn-node:qkd_app': [
    {
      app_id: appId,
      app_type: `${T}:CLIENT`,
      server_app_id: 'sae-a2',
      client_app_id: ['sae-b2'],
      app_priority: 3,
      app_qos: { max_bandwidth: 100_000, min_bandwidth: 10_000, jitter: 20, ttl: 300 },
      ...over,
    },
  ],
});

describe('ETSI GS QKD 015 node interface on line:3 (kme-a - kme-b - kme-c)', () => {
  let sites: TwoSites;
  const op = new Map<string, TestClient>();
  let anonymous: TestClient;
  const node = async (kme: string): Promise<QkdNode> => {
    const res = await op.get(kme)!.get(NODE);
    assert.equal(res.status, 200, res.text);
    assert.match(String(res.headers['content-type']), /^application\/yang-data\+json/);
    assert.ok(validateNodeDocument(res.body), `${kme}: ${firstProblem(validateNodeDocument)}`);
    return (res.body as { 'etsi-qkd-sdn-node:qkd_node': QkdNode })['etsi-qkd-sdn-node:qkd_node'];
  };
  /** kme-a's applications, registered and seen in deliveries. */
  const applications = async () => (await node('kme-a')).qkd_applications.qkd_app;

  before(async () => {
    // Small, slow pools: full soon, and visibly lower for a while after keys are taken.
    sites = await startSites({
      topology: builtInTopology('line:3'),
      operator: 'operator',
      rateBps: 20_000,
      blockBits: BLOCK_BITS,
      capacityBlocks: CAPACITY,
    });
    for (const kme of ['kme-a', 'kme-b', 'kme-c']) op.set(kme, operatorAt(sites, kme));
    const port = sites.deployment.configs.find((c) => c.kme === 'kme-a')!.config.sae_api.port;
    anonymous = new TestClient(`https://127.0.0.1:${port}`, { ca: sites.deployment.ca });
    const full = async (kme: string) =>
      ((await op.get(kme)!.get('/api/v1/admin/overview')).body as KmeOverview).links.every(
        (l) => l.own_blocks === CAPACITY,
      );
    await eventually(async () => (await full('kme-a')) && (await full('kme-b')) && full('kme-c'), 30_000, 'full pools');
  });
  after(async () => {
    await Promise.all([...op.values(), anonymous].map((c) => c.close()));
    await sites.stop();
  });

  it('answers the whole node, valid against the schema, with the links and interfaces the KME has', async () => {
    for (const kme of ['kme-a', 'kme-b', 'kme-c']) {
      const n = await node(kme);
      const overview = (await op.get(kme)!.get('/api/v1/admin/overview')).body as KmeOverview;
      assert.equal(n.qkdn_id, nodeUuid(kme));
      assert.equal(n.qkdn_status, `${T}:OPERATING`);
      assert.equal(n.qkdn_capabilities.key_relay_mode_enable, true);
      const phys = n.qkd_links.qkd_link.filter((l) => l.qkdl_type === `${T}:PHYS`);
      assert.deepEqual(
        phys.map((l) => l.qkdl_id),
        overview.links.map((l) => physLinkUuid(l.link_ID)),
      );
      assert.deepEqual(
        phys.map((l) => l.qkdl_remote.qkdn_id),
        overview.links.map((l) => nodeUuid(l.peer_KME_ID)),
      );
      assert.equal(n.qkd_interfaces.qkd_interface.length, overview.links.length, 'one interface per link end');
      for (const l of phys) {
        assert.equal(l.qkdl_status, `${T}:ACTIVE`);
        assert.equal(l.qkdl_performance[KEY_AVAILABILITY], String(CAPACITY * BLOCK_BITS), 'a full pool');
        assert.ok((l.qkdl_performance['skr'] as number) > 0);
      }
    }
    // Both ends of a link name it alike, and each other's interface.
    const [a, b] = [await node('kme-a'), await node('kme-b')];
    const ab = physLinkUuid('link-a-b');
    const atA = a.qkd_links.qkd_link.find((l) => l.qkdl_id === ab)!;
    const atB = b.qkd_links.qkd_link.find((l) => l.qkdl_id === ab)!;
    assert.deepEqual(atA.qkdl_local, atB.qkdl_remote);
    assert.deepEqual(atA.qkdl_remote, atB.qkdl_local);
  });

  it('serves containers and list entries by key; availability falls as keys are taken', async () => {
    const links = await op.get('kme-a')!.get(`${NODE}/qkd_links`);
    assert.equal(links.status, 200);
    assert.ok((links.body as Record<string, unknown>)['etsi-qkd-sdn-node:qkd_links']);
    const apps = await op.get('kme-a')!.get(APPS);
    assert.ok((apps.body as Record<string, unknown>)['etsi-qkd-sdn-node:qkd_applications']);
    const entryPath = `${NODE}/qkd_links/qkd_link=${physLinkUuid('link-a-b')}`;
    const availability = async () => {
      const res = await op.get('kme-a')!.get(entryPath);
      assert.equal(res.status, 200, res.text);
      const [entry] = (res.body as { 'etsi-qkd-sdn-node:qkd_link': QkdNode['qkd_links']['qkd_link'] })[
        'etsi-qkd-sdn-node:qkd_link'
      ];
      return Number(entry!.qkdl_performance[KEY_AVAILABILITY]);
    };
    assert.equal(await availability(), CAPACITY * BLOCK_BITS);
    // 32 keys of 256 bits: 32 of kme-a's blocks, which come back at about 39 a second.
    await agreeKeys(sites, 'sae-a1', 'sae-b1', 'number=32&size=256');
    assert.ok((await availability()) <= (CAPACITY - 16) * BLOCK_BITS, 'fewer bits available after the keys');
  });

  it('shows a relayed key in the middle node’s VIRT link, and the SAE pair as an application at both ends', async () => {
    await agreeKeys(sites, 'sae-a1', 'sae-c1', 'number=4&size=512');
    const path = ['kme-a', 'kme-b', 'kme-c'];
    const virtAt = async (kme: string) =>
      (await node(kme)).qkd_links.qkd_link.find((l) => l.qkdl_id === virtLinkUuid(path));
    const middle = (await virtAt('kme-b'))!;
    assert.equal(middle.qkdl_type, `${T}:VIRT`);
    assert.equal(middle.virt_prev_hop, nodeUuid('kme-a'));
    assert.deepEqual(middle.virt_next_hop, [nodeUuid('kme-c')]);
    assert.ok(middle.virt_bandwidth! > 0, 'relayed bits in the last minute');
    assert.deepEqual(middle.qkdl_local, { qkdn_id: nodeUuid('kme-a') });
    assert.deepEqual(middle.qkdl_remote, { qkdn_id: nodeUuid('kme-c') });
    const source = (await virtAt('kme-a'))!;
    assert.equal(source.virt_prev_hop, undefined);
    assert.deepEqual(source.virt_next_hop, [nodeUuid('kme-b')]);

    const appId = pairAppUuid('sae-a1', ['sae-c1']);
    for (const kme of ['kme-a', 'kme-c']) {
      const app = (await node(kme)).qkd_applications.qkd_app.find((x) => x.app_id === appId);
      assert.ok(app, `${kme} shows the pair`);
      assert.equal(app.server_app_id, 'sae-a1');
      assert.deepEqual(app.client_app_id, ['sae-c1']);
      assert.equal(app.app_status, `${T}:ON`);
      const bits = app.app_statistics.statistics.reduce((s, x) => s + x.consumed_bits, 0);
      assert.equal(bits, 4 * 512, `${kme}: consumed bits`);
    }
    const atA = (await node('kme-a')).qkd_applications.qkd_app.find((x) => x.app_id === appId)!;
    assert.equal(atA.remote_qkdn_id, nodeUuid('kme-c'));
    assert.deepEqual(atA.backing_qkdl_id, [virtLinkUuid(path)], 'no direct link: the relay path backs it');
    const pair = (await node('kme-a')).qkd_applications.qkd_app.find(
      (x) => x.app_id === pairAppUuid('sae-a1', ['sae-b1']),
    )!;
    assert.deepEqual(pair.backing_qkdl_id, [physLinkUuid('link-a-b')]);
  });

  it('refuses callers without operator credentials', async () => {
    assertRestconfError(await anonymous.get(NODE), 401, 'access-denied', 'no certificate');
    assertRestconfError(await sites.sae('sae-a1').get(NODE), 401, 'access-denied', 'an SAE that is no admin');
    const write = await sites.sae('sae-a1').call('POST', APPS, appBody(pairAppUuid('x', [])), YANG_JSON);
    assertRestconfError(write, 401, 'access-denied', 'a write by an SAE');
  });

  it('registers, replaces and deletes an application with QoS; the registration survives a restart', async () => {
    const a = op.get('kme-a')!;
    const id = '3f1c8a52-7d4e-4b6a-9c2d-0e5f6a7b8c9d';
    const created = await a.call('POST', APPS, appBody(id), YANG_JSON);
    assert.equal(created.status, 201, created.text);
    assert.equal(created.headers['location'], `${APPS}/qkd_app=${id}`);
    const got = await a.get(`${APPS}/qkd_app=${id}`);
    const [app] = (got.body as { 'etsi-qkd-sdn-node:qkd_app': QkdNode['qkd_applications']['qkd_app'] })[
      'etsi-qkd-sdn-node:qkd_app'
    ];
    assert.deepEqual(app!.app_qos, { max_bandwidth: 100_000, min_bandwidth: 10_000, jitter: 20, ttl: 300 });
    assert.equal(app!.local_qkdn_id, nodeUuid('kme-a'));
    assert.equal(app!.remote_qkdn_id, nodeUuid('kme-b'));
    assert.deepEqual(app!.backing_qkdl_id, [physLinkUuid('link-a-b')]);
    assertRestconfError(await a.call('POST', APPS, appBody(id), YANG_JSON), 409, 'data-exists', 'created twice');

    const replaced = await a.call('PUT', `${APPS}/qkd_app=${id}`, appBody(id, { app_priority: 7 }), YANG_JSON);
    assert.equal(replaced.status, 204, replaced.text);
    const other = '5a6b7c8d-1e2f-4a3b-8c4d-5e6f7a8b9c0d';
    // Plain application/json too (TeraFlowSDN's driver sends it).
    const put = await a.call('PUT', `${APPS}/qkd_app=${other}`, appBody(other));
    assert.equal(put.status, 201, put.text);
    assert.equal((await a.call('DELETE', `${APPS}/qkd_app=${other}`)).status, 204);
    assertRestconfError(await a.call('DELETE', `${APPS}/qkd_app=${other}`), 404, 'invalid-value', 'deleted twice');

    await sites.stopKme('kme-a');
    await sites.startKme('kme-a');
    a.close().catch(() => undefined);
    op.set('kme-a', operatorAt(sites, 'kme-a'));
    const after = (await node('kme-a')).qkd_applications.qkd_app.find((x) => x.app_id === id);
    assert.ok(after, 'still registered after a restart');
    const pairs = (await node('kme-a')).qkd_applications.qkd_app.map((x) => x.app_id);
    assert.ok(!pairs.includes(pairAppUuid('sae-a1', ['sae-b1'])), 'pairs come from the in-memory delivery log');
    assert.equal(after.app_priority, 7);
    assert.equal(after.app_status, `${T}:ON`);
  });

  it('answers bad requests with their RFC 8040 status and body, and changes nothing', async () => {
    const a = op.get('kme-a')!;
    // The delivery log is in memory: after the restart above, the pair shows again once it takes keys.
    await agreeKeys(sites, 'sae-a1', 'sae-b1', 'number=1');
    const before = JSON.stringify(await applications());
    const file = join(sites.deployment.configs.find((c) => c.kme === 'kme-a')!.config.data_dir, APPS_FILE);
    const onDisk = readFileSync(file, 'utf8');
    const id = 'c0ffee00-1234-4abc-8def-0123456789ab';
    const cases: Array<[string, Promise<HttpResult>, number, string]> = [
      ['malformed JSON', a.call('POST', APPS, '{"etsi-qkd-sdn-node:qkd_app": [', YANG_JSON), 400, 'malformed-message'],
      ['no body', a.call('POST', APPS, undefined, YANG_JSON), 400, 'malformed-message'],
      [
        'a bare entry',
        a.call('POST', APPS, appBody(id)['etsi-qkd-sdn-node:qkd_app'][0], YANG_JSON),
        400,
        'invalid-value',
      ],
      ['a negative ttl', a.call('POST', APPS, appBody(id, { app_qos: { ttl: -1 } }), YANG_JSON), 400, 'invalid-value'],
      [
        'a read-only leaf',
        a.call('POST', APPS, appBody(id, { app_status: `${T}:ON` }), YANG_JSON),
        400,
        'invalid-value',
      ],
      [
        'an unknown identity',
        a.call('POST', APPS, appBody(id, { app_type: 'CLIENT' }), YANG_JSON),
        400,
        'invalid-value',
      ],
      ['a bad UUID', a.call('POST', APPS, appBody('app-1'), YANG_JSON), 400, 'invalid-value'],
      [
        'another node as local',
        a.call('POST', APPS, appBody(id, { local_qkdn_id: nodeUuid('kme-b') }), YANG_JSON),
        400,
        'invalid-value',
      ],
      [
        'min above max bandwidth',
        a.call('POST', APPS, appBody(id, { app_qos: { min_bandwidth: 9, max_bandwidth: 1 } }), YANG_JSON),
        400,
        'invalid-value',
      ],
      [
        'a key unlike the path',
        a.call('PUT', `${APPS}/qkd_app=${nodeUuid('z')}`, appBody(id), YANG_JSON),
        400,
        'invalid-value',
      ],
      [
        'text/plain',
        a.call('POST', APPS, JSON.stringify(appBody(id)), { 'content-type': 'text/plain' }),
        415,
        'invalid-value',
      ],
      ['a query', a.get(`${NODE}?depth=1`), 400, 'invalid-value'],
      ['an unknown resource', a.get(`${NODE}/qkd_nothing`), 404, 'invalid-value'],
      ['an unknown link', a.get(`${NODE}/qkd_links/qkd_link=${nodeUuid('none')}`), 404, 'invalid-value'],
      ['an unknown app', a.get(`${APPS}/qkd_app=${id}`), 404, 'invalid-value'],
      ['another module', a.get('/restconf/data/ietf-interfaces:interfaces'), 404, 'invalid-value'],
      [
        'POST to interfaces',
        a.call('POST', `${NODE}/qkd_interfaces`, appBody(id), YANG_JSON),
        405,
        'operation-not-supported',
      ],
      ['PATCH', a.call('PATCH', APPS, appBody(id), YANG_JSON), 405, 'operation-not-supported'],
      [
        'DELETE of a pair that was never registered',
        a.call('DELETE', `${APPS}/qkd_app=${pairAppUuid('sae-a1', ['sae-b1'])}`),
        405,
        'operation-not-supported',
      ],
      [
        'a virtual link with no entry',
        a.call('POST', `${NODE}/qkd_links`, { 'etsi-qkd-sdn-node:qkd_link': [] }, YANG_JSON),
        400,
        'invalid-value',
      ],
      [
        'deleting a physical link',
        a.call('DELETE', `${NODE}/qkd_links/qkd_link=${physLinkUuid('link-a-b')}`),
        405,
        'operation-not-supported',
      ],
      [
        'a body too large',
        a.call('POST', APPS, appBody(id, { server_app_id: 'x'.repeat(70_000) }), YANG_JSON),
        413,
        'too-big',
      ],
    ];
    for (const [what, res, status, tag] of cases) assertRestconfError(await res, status, tag, what);
    const patch = await a.call('PATCH', APPS, appBody(id), YANG_JSON);
    assert.equal(patch.headers['allow'], 'GET, HEAD, POST');
    assert.equal(JSON.stringify(await applications()), before, 'nothing registered, replaced or deleted');
    assert.equal(readFileSync(file, 'utf8'), onDisk, 'the registry file is unchanged');
    const metrics = parseMetrics((await a.get('/metrics')).text);
    assert.ok(metrics.get('qks_refusals_total{reason="restconf_invalid_value"}')! >= 10, 'refusals are counted');
  });
});
