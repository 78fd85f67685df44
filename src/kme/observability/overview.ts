import { linkHealth, type LinkHealth } from '../../domain/link-health.js';
import { keysFromBlocks } from '../../domain/material.js';
import type { KeyStore } from '../../stores/key-store.js';
import type { LinkPool } from '../link-pool.js';
import type { Delivery, DeliveryLog } from './delivery-log.js';
import type { IntegrationBoard, IntegrationEntry } from './integration-board.js';
import type { LinkHistory, LinkSample } from './link-history.js';
import type { PeerSyncState, PeerSyncTracker } from './peer-sync.js';
import type { CrlStatus } from '../crl-upkeep.js';
import type { LinkStartup } from './link-startup.js';
import type { RelayLog, RelaySummary } from './relay-log.js';

/** One link as this KME sees it. */
export interface LinkOverview {
  link_ID: string;
  endpoints: readonly string[];
  peer_KME_ID: string;
  kind: string;
  protocol: string;
  state: string;
  error?: string;
  health: LinkHealth;
  health_reasons: string[];
  /** Secret key rate over the latest sampling window, bit/s; null: the link has measured no frame yet. */
  rate_bps: number | null;
  /** The source's own figure: configured (shared-seed simulator) or measured (null before a frame). */
  configured_rate_bps: number | null;
  /** What the link's model predicts (not measured), when the source has a model. */
  expected_rate_bps?: number;
  /** null when the source does not measure it (the shared-seed simulator). */
  qber: number | null;
  block_bits: number;
  capacity_blocks: number;
  own_blocks: number;
  peer_blocks: number;
  pool_fill: number;
  /** Keys of the default size this KME can cut now (the status endpoint's `stored_key_count`). */
  stored_key_count: number;
  history: LinkSample[];
}

/** Everything the dashboard and `qks status` show of one KME. Key IDs shortened; never key material. */
export interface KmeOverview {
  KME_ID: string;
  generated_at: number;
  sample_interval_ms: number;
  key_size: number;
  links: LinkOverview[];
  peers: PeerSyncState[];
  outbox_cancels: number;
  keys_delivered: { to_masters: number; to_slaves: number };
  keys_waiting_for_slaves: number;
  saes: Array<{ SAE_ID: string; deliveries: Delivery[] }>;
  integrations: IntegrationEntry[];
  /** The revocation lists this KME checks certificates against, and when each expires. */
  crls?: CrlStatus[];
  /** Relays started here or passing through (docs/network.md). */
  relays?: RelaySummary;
}

export interface OverviewSources {
  readonly kmeId: string;
  readonly keySize: number;
  readonly localSaes: readonly string[];
  readonly pools: readonly LinkPool[];
  readonly store: KeyStore;
  readonly history: LinkHistory;
  /** Where each link is in its start (`starting` until its first key and through its first fill). */
  readonly startup: LinkStartup;
  readonly deliveries: DeliveryLog;
  readonly delivered: { readonly toMasters: number; readonly toSlaves: number };
  readonly integrations: IntegrationBoard;
  readonly peerSync: PeerSyncTracker;
  readonly crls?: () => CrlStatus[];
  readonly relays?: RelayLog;
  readonly now?: () => number;
}

export async function buildOverview(s: OverviewSources, historyMs = 300_000): Promise<KmeOverview> {
  const now = (s.now ?? Date.now)();
  const links = await Promise.all(s.pools.map((pool) => linkOverview(s, pool, historyMs)));
  const recent = s.deliveries.recent();
  return {
    KME_ID: s.kmeId,
    generated_at: now,
    sample_interval_ms: s.history.intervalMs,
    key_size: s.keySize,
    links,
    peers: s.peerSync.list(),
    outbox_cancels: (await s.store.listOutbox(1000)).length,
    keys_delivered: { to_masters: s.delivered.toMasters, to_slaves: s.delivered.toSlaves },
    keys_waiting_for_slaves: (await s.store.countKeys()).ready,
    saes: s.localSaes.map((sae) => ({ SAE_ID: sae, deliveries: recent[sae] ?? [] })),
    integrations: s.integrations.list(now),
    crls: s.crls?.() ?? [],
    ...(s.relays ? { relays: s.relays.summary() } : {}),
  };
}

async function linkOverview(s: OverviewSources, pool: LinkPool, historyMs: number): Promise<LinkOverview> {
  const info = pool.source.info();
  const [own, peer] = [await pool.ownBlocks(), await pool.peerBlocks()];
  const latest = s.history.latest(pool.linkId);
  const rate = info.stats?.secretBps ?? latest?.rateBps ?? 0;
  const qber = info.stats?.qber ?? null;
  const fill = pool.capacityBlocks > 0 ? own / pool.capacityBlocks : 0;
  // Until the first sample, trust a running source's own rate rather than call the link down.
  const { health, reasons } = linkHealth({
    state: info.state,
    rateBps: latest || info.stats ? rate : (info.rateBps ?? 0),
    qber,
    poolFill: fill,
    phase: s.startup.phase(pool, own),
    unit: info.stats ? 'frame' : 'block',
  });
  return {
    link_ID: pool.linkId,
    endpoints: pool.ends.endpoints,
    peer_KME_ID: pool.peerKme,
    kind: info.kind,
    protocol: info.protocol,
    state: info.state,
    ...(info.error ? { error: info.error } : {}),
    health,
    health_reasons: reasons,
    rate_bps: info.stats && info.rateBps === null ? null : Math.round(rate),
    configured_rate_bps: info.rateBps,
    ...(info.expectedRateBps !== undefined ? { expected_rate_bps: Math.round(info.expectedRateBps) } : {}),
    qber,
    block_bits: pool.ends.blockBits,
    capacity_blocks: pool.capacityBlocks,
    own_blocks: own,
    peer_blocks: peer,
    pool_fill: fill,
    stored_key_count: keysFromBlocks(pool.ends.blockBits, s.keySize, own),
    history: s.history.recent(pool.linkId, historyMs),
  };
}
