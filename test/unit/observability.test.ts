import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { parseIntegrationReport } from '../../src/domain/integration-report.js';
import { linkHealth } from '../../src/domain/link-health.js';
import { buildNetwork, type KmeReport } from '../../src/dashboard/network.js';
import { renderStatus } from '../../src/dashboard/status-view.js';
import { DeliveryLog } from '../../src/kme/observability/delivery-log.js';
import { IntegrationBoard } from '../../src/kme/observability/integration-board.js';
import type { KmeOverview, LinkOverview } from '../../src/kme/observability/overview.js';
import { LinkStartup, STARTUP_LIMITS_MS } from '../../src/kme/observability/link-startup.js';
import type { LinkPool } from '../../src/kme/link-pool.js';

const KEY_ID = '6f89fb6f-5fa9-46a5-b69b-e68d7c8ecd58';
const report = {
  kind: 'ipsec',
  name: 'conn-1',
  key_ID: KEY_ID,
  rotates_at: 1_900_000_000_000,
  state: 'up',
  peer: 'sae-b1',
};

describe('integration reports', () => {
  it('accept what agents send, with ISO or epoch times and no key yet', () => {
    assert.deepEqual(parseIntegrationReport(report), report);
    assert.equal(
      parseIntegrationReport({ ...report, rotates_at: '2030-03-01T12:00:00Z' }).rotates_at,
      Date.UTC(2030, 2, 1, 12),
    );
    const starting = parseIntegrationReport({
      kind: 'tunnel',
      name: 'client:127.0.0.1:5000',
      state: 'starting',
      peer: 'sae-b1',
    });
    assert.equal(starting.key_ID, null);
    assert.equal(starting.rotates_at, null);
  });

  it('refuse anything else, saying why', () => {
    const cases: Array<[unknown, RegExp]> = [
      [null, /JSON object/],
      [{ ...report, kind: 'wireguard' }, /kind must be one of tunnel, stunnel, ipsec/],
      [{ ...report, name: 'a b' }, /name/],
      [{ ...report, name: 'x'.repeat(65) }, /name/],
      [{ ...report, key_ID: 7 }, /key_ID/],
      [{ ...report, rotates_at: -1 }, /rotates_at/],
      [{ ...report, rotates_at: 1.5 }, /rotates_at/],
      [{ ...report, rotates_at: 'tomorrow' }, /rotates_at/],
      [{ ...report, state: 'ok' }, /state/],
      [{ ...report, peer: '' }, /peer/],
      [{ ...report, key: 'c2VjcmV0' }, /unknown fields: key/],
    ];
    for (const [body, message] of cases)
      assert.throws(() => parseIntegrationReport(body), message, JSON.stringify(body));
  });

  it('are kept per SAE, kind and name; shown stale, then forgotten, when they stop', () => {
    const board = new IntegrationBoard({ staleAfterMs: 1000, forgetAfterMs: 5000, maxEntries: 3 });
    board.report('sae-a1', parseIntegrationReport(report), 0);
    board.report('sae-a1', parseIntegrationReport({ ...report, state: 'rotating' }), 100);
    assert.equal(board.list(200).length, 1, 'a new report replaces the old one');
    assert.equal(board.list(200)[0]!.state, 'rotating');
    assert.equal(board.list(200)[0]!.key_ID, '6f89fb6f', 'key IDs shortened');
    assert.equal(board.list(1200)[0]!.stale, true);
    assert.equal(board.list(6000).length, 0);
    for (const name of ['a', 'b', 'c', 'd']) board.report('sae-a1', parseIntegrationReport({ ...report, name }), 7000);
    assert.deepEqual(
      board.list(7000).map((e) => e.name),
      ['b', 'c', 'd'],
      'bounded: the oldest goes',
    );
  });
});

describe('the delivery log', () => {
  it('keeps the latest deliveries per SAE, newest first, with at most 8 shortened key IDs', () => {
    const log = new DeliveryLog(2);
    for (let i = 0; i < 3; i++) {
      log.record({
        at: i,
        sae: 'sae-a1',
        role: 'master',
        peers: ['sae-b1'],
        number: 10,
        sizeBits: 256,
        keyIds: Array(10).fill(KEY_ID),
      });
    }
    const recent = log.recent()['sae-a1']!;
    assert.deepEqual(
      recent.map((d) => d.at),
      [2, 1],
    );
    assert.equal(recent[0]!.keyIds.length, 8);
    assert.ok(recent[0]!.keyIds.every((id) => id === '6f89fb6f'));
  });
});

describe('link health', () => {
  it('healthy, degraded (QBER high or pool low) and down', () => {
    const ok = { state: 'running', rateBps: 1000, qber: 0.02, poolFill: 0.5 };
    assert.equal(linkHealth(ok).health, 'healthy');
    assert.deepEqual(linkHealth({ ...ok, qber: 0.07 }), { health: 'degraded', reasons: ['QBER 7.0 %'] });
    assert.deepEqual(linkHealth({ ...ok, poolFill: 0.05 }), { health: 'degraded', reasons: ['pool 5 % full'] });
    assert.equal(linkHealth({ ...ok, qber: null }).health, 'healthy', 'no QBER measured: not a reason to worry');
    assert.equal(linkHealth({ ...ok, state: 'failed' }).health, 'down');
    assert.equal(linkHealth({ ...ok, rateBps: 0 }).health, 'down');
  });
  it('starting: the source starting, no key yet since start, or the pool filling for the first time', () => {
    const ok = { state: 'running', rateBps: 1000, qber: 0.02, poolFill: 0.05 };
    assert.deepEqual(linkHealth({ ...ok, state: 'starting' }), { health: 'starting', reasons: ['source starting'] });
    assert.deepEqual(linkHealth({ ...ok, rateBps: 0, phase: 'first-key', unit: 'frame' }), {
      health: 'starting',
      reasons: ['waiting for the first frame'],
    });
    assert.deepEqual(linkHealth({ ...ok, phase: 'filling' }), {
      health: 'starting',
      reasons: ['pool filling: 5 % full'],
    });
    assert.deepEqual(linkHealth({ ...ok, phase: 'filling', qber: 0.07 }), {
      health: 'degraded',
      reasons: ['QBER 7.0 %'],
    });
    assert.equal(linkHealth({ ...ok, phase: 'first-key', state: 'failed' }).health, 'down');
    assert.deepEqual(linkHealth({ ...ok, phase: 'started' }), { health: 'degraded', reasons: ['pool 5 % full'] });
  });
});

const link = (over: Partial<LinkOverview> = {}): LinkOverview => ({
  link_ID: 'link-a-b',
  endpoints: ['kme-a', 'kme-b'],
  peer_KME_ID: 'kme-b',
  kind: 'simulated',
  protocol: 'sim',
  state: 'running',
  health: 'healthy',
  health_reasons: [],
  rate_bps: 1_000_000,
  configured_rate_bps: 1_000_000,
  qber: null,
  block_bits: 256,
  capacity_blocks: 1000,
  own_blocks: 500,
  peer_blocks: 500,
  pool_fill: 0.5,
  stored_key_count: 500,
  history: [],
  ...over,
});
const overview = (id: string, links: LinkOverview[]): KmeOverview => ({
  KME_ID: id,
  generated_at: 0,
  sample_interval_ms: 2000,
  key_size: 256,
  links,
  peers: [],
  outbox_cancels: 0,
  keys_delivered: { to_masters: 1, to_slaves: 2 },
  keys_waiting_for_slaves: 0,
  saes: [{ SAE_ID: `sae-${id.slice(4)}1`, deliveries: [] }],
  integrations: [],
});

describe('the network view', () => {
  it('merges both ends of a link, keeping the worse health and each end’s pool', () => {
    const reports: KmeReport[] = [
      { KME_ID: 'kme-a', reachable: true, overview: overview('kme-a', [link()]) },
      {
        KME_ID: 'kme-b',
        reachable: true,
        overview: overview('kme-b', [
          link({
            peer_KME_ID: 'kme-a',
            health: 'degraded',
            health_reasons: ['pool 5 % full'],
            pool_fill: 0.05,
            own_blocks: 50,
          }),
        ]),
      },
    ];
    const view = buildNetwork(reports, 1);
    assert.equal(view.links.length, 1);
    assert.equal(view.links[0]!.health, 'degraded');
    assert.deepEqual(
      view.links[0]!.ends.map((e) => [e.KME_ID, e.own_blocks]),
      [
        ['kme-a', 500],
        ['kme-b', 50],
      ],
    );
    assert.deepEqual(
      view.saes.map((s) => [s.SAE_ID, s.KME_ID]),
      [
        ['sae-a1', 'kme-a'],
        ['sae-b1', 'kme-b'],
      ],
    );
  });

  it('a KME that does not answer is unreachable and its links are down; far ends it cannot see are unwatched', () => {
    const view = buildNetwork(
      [
        {
          KME_ID: 'kme-a',
          reachable: true,
          overview: overview('kme-a', [link(), link({ link_ID: 'link-a-c', endpoints: ['kme-a', 'kme-c'] })]),
        },
        { KME_ID: 'kme-b', reachable: false, error: 'connect ECONNREFUSED' },
      ],
      1,
    );
    assert.deepEqual(
      view.nodes.map((n) => [n.id, n.status]),
      [
        ['kme-a', 'up'],
        ['kme-b', 'unreachable'],
        ['kme-c', 'unwatched'],
      ],
    );
    assert.equal(view.links.find((l) => l.link_ID === 'link-a-b')!.health, 'down');
    assert.match(view.links.find((l) => l.link_ID === 'link-a-b')!.health_reasons[0]!, /kme-b not answering/);
    assert.equal(view.links.find((l) => l.link_ID === 'link-a-c')!.health, 'healthy');
    const text = renderStatus(view);
    assert.match(text, /1\/3 KMEs answering/);
    assert.match(text, /link-a-b\s+kme-a - kme-b\s+down\s+1\.00 Mb\/s\s+n\/a\s+kme-a 500 50\.0% 500/);
    assert.match(text, /kme-b\s+unreachable\s+-\s+-\s+-\s+connect ECONNREFUSED/);
    assert.ok(!renderStatus(view).includes('\x1b['), 'no colour codes unless asked');
    assert.ok(renderStatus(view, { colour: true }).includes('\x1b[31mdown\x1b[0m'));
  });
});

describe('a link start is bounded', () => {
  const pool = (made: boolean) => ({ linkId: 'l', capacityBlocks: 1000, madeSinceStart: made }) as unknown as LinkPool;

  it('first-key turns into the ordinary rules after a minute without key', () => {
    const startup = new LinkStartup();
    assert.equal(startup.phase(pool(false), 0, 0), 'first-key');
    assert.equal(startup.phase(pool(false), 0, STARTUP_LIMITS_MS.firstKey), 'first-key');
    assert.equal(startup.phase(pool(false), 0, STARTUP_LIMITS_MS.firstKey + 1), 'started');
  });

  it('the first fill ends at the low mark, when the pool is seen to fall, or after its limit', () => {
    const rising = new LinkStartup();
    assert.equal(rising.phase(pool(true), 10, 0), 'filling');
    assert.equal(rising.phase(pool(true), 50, 1000), 'filling');
    assert.equal(rising.phase(pool(true), 100, 2000), 'started');
    const taken = new LinkStartup();
    assert.equal(taken.phase(pool(true), 50, 0), 'filling');
    assert.equal(taken.phase(pool(true), 40, 1000), 'started');
    assert.equal(taken.phase(pool(true), 60, 2000), 'started', 'for good');
    const slow = new LinkStartup();
    assert.equal(slow.phase(pool(true), 1, 0), 'filling');
    assert.equal(slow.phase(pool(true), 2, STARTUP_LIMITS_MS.filling + 1), 'started');
  });
});
