import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { interfaceId, nodeUuid, pairAppUuid, physLinkUuid, uuidV5, virtLinkUuid } from '../../src/sdn/ids.js';
import { buildNodeDocument, KEY_AVAILABILITY, type LinkInput, type NodeInput } from '../../src/sdn/node-model.js';
import { firstProblem, validateAppWrite, validateNodeDocument } from '../../src/sdn/node-schema.js';
import { parseDataPath, selectResource, NODE_PATH } from '../../src/sdn/restconf.js';

const NOW = Date.parse('2030-01-01T00:10:30Z');
const T = 'etsi-qkd-node-types';

const link = (over: Partial<LinkInput>): LinkInput => ({
  linkId: 'link-a-b',
  peerKme: 'kme-a',
  kind: 'simulated',
  protocol: 'simulator (shared seed; not QKD)',
  state: 'running',
  skrBps: 64_000,
  qber: null,
  availableBits: 8192 * 10,
  ...over,
});

/** kme-b, the middle of a line a - b - c. */
const input = (over: Partial<NodeInput> = {}): NodeInput => ({
  kmeId: 'kme-b',
  version: '0.1.0',
  location: '127.0.1.2',
  relays: true,
  now: NOW,
  links: [
    link({}),
    link({ linkId: 'link-b-c', peerKme: 'kme-c', kind: 'qkd-simulator', protocol: 'BB84', qber: 0.0312 }),
  ],
  relayLog: [{ at: NOW - 1000, path: ['kme-a', 'kme-b', 'kme-c'], bits: 6000, ok: true }],
  deliveries: [
    { at: NOW - 2000, sae: 'sae-b1', role: 'master', peers: ['sae-c1'], number: 3, sizeBits: 256 },
    { at: NOW - 1000, sae: 'sae-b1', role: 'master', peers: ['sae-c1'], number: 1, sizeBits: 512 },
    { at: NOW - 90_000, sae: 'sae-b1', role: 'master', peers: ['sae-c1'], number: 1, sizeBits: 1024 },
  ],
  registered: [],
  kmeOfSae: (sae) => ({ 'sae-a1': 'kme-a', 'sae-b1': 'kme-b', 'sae-c1': 'kme-c' })[sae],
  ...over,
});

describe('SDN node identifiers', () => {
  it('are RFC 9562 name-based UUIDs (version 5), stable and shared by both ends', () => {
    // RFC 9562 Appendix A.4: "www.example.com" in the DNS namespace.
    assert.equal(
      uuidV5('www.example.com', '6ba7b810-9dad-11d1-80b4-00c04fd430c8'),
      '2ed6657d-e927-568b-95e1-2665a8aea6a2',
    );
    assert.equal(nodeUuid('kme-a'), nodeUuid('kme-a'));
    assert.notEqual(nodeUuid('kme-a'), nodeUuid('kme-b'));
    assert.match(physLinkUuid('link-a-b'), /^[0-9a-f]{8}-[0-9a-f]{4}-5[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
    assert.notEqual(virtLinkUuid(['a', 'b', 'c']), virtLinkUuid(['c', 'b', 'a']));
    assert.equal(pairAppUuid('m', ['y', 'x']), pairAppUuid('m', ['x', 'y']));
    const id = interfaceId('kme-a', 'link-a-b');
    assert.ok(Number.isInteger(id) && id >= 0 && id <= 0xffffffff);
  });
});

describe('SDN node document (ETSI GS QKD 015)', () => {
  const doc = buildNodeDocument(input());
  const node = doc['etsi-qkd-sdn-node:qkd_node'];

  it('is valid against the schema derived from the model', () => {
    assert.ok(validateNodeDocument(doc), firstProblem(validateNodeDocument));
    assert.equal(node.qkdn_id, nodeUuid('kme-b'));
    assert.equal(node.qkdn_status, `${T}:OPERATING`);
    assert.equal(node.qkdn_version, '0.1.0');
    assert.equal(node.qkdn_location_id, '127.0.1.2');
    assert.deepEqual(node.qkdn_capabilities, {
      link_stats_support: true,
      application_stats_support: true,
      key_relay_mode_enable: true,
    });
  });

  it('has one interface per link end, typed by technology', () => {
    const [sim, qkd] = node.qkd_interfaces.qkd_interface;
    assert.equal(sim!.qkdi_id, interfaceId('kme-b', 'link-a-b'));
    assert.equal(sim!.qkdi_type, undefined, 'the shared-seed simulator is no QKD technology');
    assert.equal(qkd!.qkdi_type, `${T}:DV-QKD`);
    assert.deepEqual(qkd!.qkdi_att_point, { device: 'link-b-c' });
    assert.equal(qkd!.qkdi_status, `${T}:ENABLED`);
  });

  it('shows PHYS links with rate, QBER where measured, availability and consumption', () => {
    const [ab, bc] = node.qkd_links.qkd_link;
    assert.equal(ab!.qkdl_id, physLinkUuid('link-a-b'));
    assert.equal(ab!.qkdl_type, `${T}:PHYS`);
    assert.deepEqual(ab!.qkdl_remote, { qkdn_id: nodeUuid('kme-a'), qkdi_id: interfaceId('kme-a', 'link-a-b') });
    assert.equal(ab!.qkdl_performance['skr'], 64_000);
    assert.equal(ab!.qkdl_performance[KEY_AVAILABILITY], '81920');
    assert.equal(ab!.qkdl_performance['phys_perf'], undefined);
    assert.deepEqual(bc!.qkdl_performance['phys_perf'], [{ perf_type: `${T}:QBER`, value: '0.031' }]);
    // In the last minute: 3 x 256 + 512 bits to the SAE pair on b-c, 6000 bits relayed over both links.
    assert.equal(ab!.qkdl_performance['expected_consumption'], 100);
    assert.equal(bc!.qkdl_performance['expected_consumption'], Math.round((768 + 512) / 60) + 100);
  });

  it('shows a relay through this KME as a VIRT link with its hops', () => {
    const virt = node.qkd_links.qkd_link.find((l) => l.qkdl_type === `${T}:VIRT`)!;
    assert.equal(virt.qkdl_id, virtLinkUuid(['kme-a', 'kme-b', 'kme-c']));
    assert.equal(virt.qkdl_local.qkdn_id, nodeUuid('kme-a'));
    assert.equal(virt.qkdl_remote.qkdn_id, nodeUuid('kme-c'));
    assert.equal(virt.virt_prev_hop, nodeUuid('kme-a'));
    assert.deepEqual(virt.virt_next_hop, [nodeUuid('kme-c')]);
    assert.equal(virt.virt_bandwidth, 100);
    assert.equal(virt.qkdl_status, `${T}:ACTIVE`);
  });

  it('shows an SAE pair in use as an application with consumed bits per minute', () => {
    const [app] = node.qkd_applications.qkd_app;
    assert.equal(app!.app_id, pairAppUuid('sae-b1', ['sae-c1']));
    assert.equal(app!.server_app_id, 'sae-b1');
    assert.deepEqual(app!.client_app_id, ['sae-c1']);
    assert.equal(app!.remote_qkdn_id, nodeUuid('kme-c'));
    assert.deepEqual(app!.backing_qkdl_id, [physLinkUuid('link-b-c')]);
    assert.deepEqual(app!.app_statistics.statistics, [
      { start_time: '2030-01-01T00:09:00.000Z', end_time: '2030-01-01T00:10:00.000Z', consumed_bits: 1024 },
      { start_time: '2030-01-01T00:10:00.000Z', end_time: '2030-01-01T00:11:00.000Z', consumed_bits: 1280 },
    ]);
    const bc = node.qkd_links.qkd_link[1]!;
    assert.deepEqual(bc.qkdl_applications, [app!.app_id]);
  });

  it('merges a registered application with the deliveries of its SAEs, keeping its QoS', () => {
    const config = {
      app_id: '0b7a3c2e-1111-4222-8333-444455556666',
      app_type: `${T}:CLIENT`,
      server_app_id: 'sae-b1',
      client_app_id: ['sae-c1'],
      app_qos: { max_bandwidth: 10_000, min_bandwidth: 1000, jitter: 10, ttl: 60 },
    };
    const merged = buildNodeDocument(input({ registered: [{ config, createdAt: NOW - 5000 }] }));
    const apps = merged['etsi-qkd-sdn-node:qkd_node'].qkd_applications.qkd_app;
    assert.equal(apps.length, 1);
    assert.equal(apps[0]!.app_id, config.app_id);
    assert.deepEqual(apps[0]!.app_qos, config.app_qos);
    assert.equal(apps[0]!.app_statistics.statistics.length, 2);
    assert.equal(apps[0]!.app_status, `${T}:ON`);
    assert.ok(validateNodeDocument(merged), firstProblem(validateNodeDocument));
    const expired = buildNodeDocument(
      input({ registered: [{ config: { ...config, expiration_time: '2029-01-01T00:00:00Z' }, createdAt: 0 }] }),
    );
    assert.equal(expired['etsi-qkd-sdn-node:qkd_node'].qkd_applications.qkd_app[0]!.app_status, `${T}:OUT-OF-TIME`);
  });

  it('counts a pair served wholly here once, and says a KME untrusted for relays does not relay', () => {
    const local = buildNodeDocument(
      input({
        relays: false,
        kmeOfSae: () => 'kme-b',
        deliveries: [
          { at: NOW, sae: 'sae-b1', role: 'master', peers: ['sae-b2'], number: 2, sizeBits: 256 },
          { at: NOW, sae: 'sae-b2', role: 'slave', peers: ['sae-b1'], number: 2, sizeBits: 256 },
        ],
      }),
    )['etsi-qkd-sdn-node:qkd_node'];
    assert.equal(local.qkd_applications.qkd_app.length, 1);
    assert.equal(local.qkd_applications.qkd_app[0]!.app_statistics.statistics[0]!.consumed_bits, 512);
    assert.equal(local.qkdn_capabilities.key_relay_mode_enable, false);
  });

  it('maps link states to the model’s statuses', () => {
    const states = buildNodeDocument(
      input({
        relayLog: [],
        links: [
          link({ state: 'starting', availableBits: 0 }),
          link({ linkId: 'l2', state: 'failed', availableBits: 100 }),
          link({ linkId: 'l3', state: 'stopped', availableBits: 0 }),
        ],
      }),
    )['etsi-qkd-sdn-node:qkd_node'];
    assert.deepEqual(
      states.qkd_links.qkd_link.map((l) => l.qkdl_status),
      [`${T}:PENDING`, `${T}:PASSIVE`, `${T}:OFF`],
    );
    assert.equal(states.qkdn_status, `${T}:DOWN`);
  });
});

describe('the schema derived from the model', () => {
  const good = buildNodeDocument(input());
  const mutate = (fn: (node: Record<string, unknown>) => void) => {
    const copy = structuredClone(good) as unknown as { 'etsi-qkd-sdn-node:qkd_node': Record<string, unknown> };
    fn(copy['etsi-qkd-sdn-node:qkd_node']);
    return copy;
  };
  const links = (n: Record<string, unknown>) => (n['qkd_links'] as { qkd_link: Record<string, unknown>[] }).qkd_link;

  it('refuses unknown leaves, unqualified or foreign identities, and leaves the when-statements exclude', () => {
    for (const [what, bad] of [
      ['an unknown leaf', mutate((n) => (n['satellite'] = 1))],
      ['an unqualified identity', mutate((n) => (n['qkdn_status'] = 'OPERATING'))],
      ['an identity of another base', mutate((n) => (n['qkdn_status'] = `${T}:ACTIVE`))],
      ['virt_prev_hop on a PHYS link', mutate((n) => (links(n)[0]!['virt_prev_hop'] = nodeUuid('x')))],
      [
        'phys_perf on a VIRT link',
        mutate((n) => ((links(n)[2]!['qkdl_performance'] as Record<string, unknown>)['phys_perf'] = [])),
      ],
      [
        'a uint64 as a number',
        mutate((n) => ((links(n)[0]!['qkdl_performance'] as Record<string, unknown>)[KEY_AVAILABILITY] = 5)),
      ],
      ['a bad UUID', mutate((n) => (n['qkdn_id'] = 'kme-b'))],
    ] as const) {
      assert.equal(validateNodeDocument(bad), false, what);
    }
  });

  it('takes writes of config leaves only', () => {
    assert.ok(validateAppWrite({ app_id: nodeUuid('x'), app_qos: { ttl: 5 } }));
    assert.equal(validateAppWrite({ app_id: nodeUuid('x'), app_status: `${T}:ON` }), false);
    assert.match(firstProblem(validateAppWrite), /read-only leaf app_status/);
    assert.equal(validateAppWrite({ app_id: nodeUuid('x'), app_qos: { ttl: -1 } }), false);
    assert.equal(validateAppWrite({ app_qos: {} }), false);
  });
});

describe('RESTCONF data paths', () => {
  const node = buildNodeDocument(input())['etsi-qkd-sdn-node:qkd_node'];
  it('select containers, list entries by key (percent-decoded) and leaves', () => {
    assert.deepEqual(Object.keys(selectResource(node, parseDataPath(NODE_PATH))), ['etsi-qkd-sdn-node:qkd_node']);
    const links = selectResource(node, parseDataPath(`${NODE_PATH}/etsi-qkd-sdn-node:qkd_links`));
    assert.equal((links['etsi-qkd-sdn-node:qkd_links'] as { qkd_link: unknown[] }).qkd_link.length, 3);
    const id = physLinkUuid('link-b-c');
    const one = selectResource(node, parseDataPath(`${NODE_PATH}/qkd_links/qkd_link=${id}`));
    assert.equal((one['etsi-qkd-sdn-node:qkd_link'] as Array<{ qkdl_id: string }>)[0]!.qkdl_id, id);
    const skr = selectResource(node, parseDataPath(`${NODE_PATH}/qkd_links/qkd_link=${id}/qkdl_performance/skr`));
    assert.deepEqual(skr, { 'etsi-qkd-sdn-node:skr': 64_000 });
    const iface = interfaceId('kme-b', 'link-a-b');
    const byNumber = selectResource(node, parseDataPath(`${NODE_PATH}/qkd_interfaces/qkd_interface=${iface}`));
    assert.ok(byNumber['etsi-qkd-sdn-node:qkd_interface']);
    const avail = parseDataPath(
      `${NODE_PATH}/qkd_links/qkd_link=${id}/qkdl_performance/qks-sdn-ext%3Akey_availability_bits`,
    );
    assert.deepEqual(selectResource(node, avail), { [KEY_AVAILABILITY]: '81920' });
  });

  it('answer 404 for what is not there', () => {
    for (const path of [
      `${NODE_PATH}/nothing`,
      `${NODE_PATH}/qkd_links/qkd_link=${nodeUuid('none')}`,
      `${NODE_PATH}/qkd_links/qkd_link`,
      '/restconf/data/other:node',
    ]) {
      assert.throws(() => selectResource(node, parseDataPath(path)), { status: 404 }, path);
    }
  });
});
