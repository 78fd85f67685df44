import type { ControllerPanel } from './controller-panel.js';
import type { LinkHealth } from '../domain/link-health.js';
import type { Delivery } from '../kme/observability/delivery-log.js';
import type { IntegrationEntry } from '../kme/observability/integration-board.js';
import type { LinkSample } from '../kme/observability/link-history.js';
import type { KmeOverview } from '../kme/observability/overview.js';
import type { PeerSyncState } from '../kme/observability/peer-sync.js';
import type { RelayRecord, RelaySummary } from '../kme/observability/relay-log.js';

/** What one watched KME answered, or why it did not. */
export interface KmeReport {
  readonly KME_ID: string;
  readonly url?: string;
  /** Whether it answered at all (with its overview, or with a refusal). */
  readonly reachable: boolean;
  /** The HTTP status of a KME that answered, but not with its overview (401, 403: our credentials refused). */
  readonly httpStatus?: number;
  readonly error?: string;
  readonly overview?: KmeOverview;
}

/**
 * `up`: answered; `refused`: answered 401 or 403, refusing our credentials; `unreachable`: watched
 * but gave no answer; `unwatched`: known only as a link's far end.
 */
export type NodeStatus = 'up' | 'refused' | 'unreachable' | 'unwatched';

/** How a node's status reads on the dashboard and in `qks status`. */
export const NODE_STATUS_TEXT: Readonly<Record<NodeStatus, string>> = {
  up: 'up',
  refused: 'refused our credentials',
  unreachable: 'unreachable',
  unwatched: 'unwatched',
};

/** Whether every watched KME gave its overview: `qks status --once` exits 0 only then. */
export const allAnswered = (view: NetworkView): boolean =>
  view.nodes.every((n) => n.status === 'up' || n.status === 'unwatched');

export interface NetworkNode {
  id: string;
  status: NodeStatus;
  error?: string;
  keys_delivered?: { to_masters: number; to_slaves: number };
  keys_waiting_for_slaves?: number;
  outbox_cancels?: number;
  /** What the operator must see to: revocation lists expiring or expired. */
  warnings?: string[];
  /** Relays started at this KME or passing through it (counts). */
  relays?: Omit<RelaySummary, 'recent'>;
}

export interface LinkEnd {
  KME_ID: string;
  own_blocks: number;
  capacity_blocks: number;
  pool_fill: number;
  stored_key_count: number;
}

export interface NetworkLink {
  link_ID: string;
  endpoints: readonly string[];
  kind: string;
  protocol: string;
  state: string;
  health: LinkHealth;
  health_reasons: string[];
  /** null: the link has measured no frame yet. */
  rate_bps: number | null;
  /** The link model's prediction, not a measurement (sources with a model). */
  expected_rate_bps?: number;
  qber: number | null;
  /** The ends that reported, each with its own share of the pool. */
  ends: LinkEnd[];
  /** Samples from the first end that reported. */
  history: LinkSample[];
}

/** The whole picture the dashboard draws and `qks status` prints. */
export interface NetworkView {
  generated_at: number;
  key_size: number | null;
  nodes: NetworkNode[];
  links: NetworkLink[];
  peers: Array<PeerSyncState & { KME_ID: string }>;
  saes: Array<{ SAE_ID: string; KME_ID: string; deliveries: Delivery[] }>;
  integrations: Array<IntegrationEntry & { KME_ID: string }>;
  /** The latest relays the watched KMEs started, newest first, with their paths. */
  relays: RelayRecord[];
  /** The SDN controller, where one runs beside the dashboard (qks demo, qks dashboard --manifest). */
  controller?: ControllerPanel;
}

const WORST: readonly LinkHealth[] = ['down', 'degraded', 'starting', 'healthy'];

const statusOf = (r: KmeReport): NodeStatus =>
  r.reachable && r.overview ? 'up' : r.httpStatus === 401 || r.httpStatus === 403 ? 'refused' : 'unreachable';

/** Merges what each KME reported into one network: KMEs as nodes, links as edges. */
export function buildNetwork(reports: readonly KmeReport[], now: number): NetworkView {
  const nodes = new Map<string, NetworkNode>();
  for (const r of reports) {
    const o = r.overview;
    nodes.set(r.KME_ID, {
      id: r.KME_ID,
      status: statusOf(r),
      ...(r.error ? { error: r.error } : {}),
      ...(o
        ? {
            keys_delivered: o.keys_delivered,
            keys_waiting_for_slaves: o.keys_waiting_for_slaves,
            outbox_cancels: o.outbox_cancels,
            warnings: crlWarnings(o),
            ...(o.relays
              ? {
                  relays: {
                    in_progress: o.relays.in_progress,
                    originated: o.relays.originated,
                    passed_on: o.relays.passed_on,
                  },
                }
              : {}),
          }
        : {}),
    });
  }
  const links = new Map<string, NetworkLink>();
  for (const r of reports) {
    for (const l of r.overview?.links ?? []) {
      for (const e of l.endpoints) if (!nodes.has(e)) nodes.set(e, { id: e, status: 'unwatched' });
      const end: LinkEnd = {
        KME_ID: r.KME_ID,
        own_blocks: l.own_blocks,
        capacity_blocks: l.capacity_blocks,
        pool_fill: l.pool_fill,
        stored_key_count: l.stored_key_count,
      };
      const known = links.get(l.link_ID);
      if (!known) {
        links.set(l.link_ID, {
          link_ID: l.link_ID,
          endpoints: l.endpoints,
          kind: l.kind,
          protocol: l.protocol,
          state: l.state,
          health: l.health,
          health_reasons: [...l.health_reasons],
          rate_bps: l.rate_bps,
          ...(l.expected_rate_bps !== undefined ? { expected_rate_bps: l.expected_rate_bps } : {}),
          qber: l.qber,
          ends: [end],
          history: l.history,
        });
        continue;
      }
      known.ends.push(end);
      if (WORST.indexOf(l.health) < WORST.indexOf(known.health)) known.health = l.health;
      for (const reason of l.health_reasons)
        if (!known.health_reasons.includes(reason)) known.health_reasons.push(reason);
      if (l.qber !== null) known.qber = Math.max(known.qber ?? 0, l.qber);
    }
  }
  for (const link of links.values()) {
    const lost = link.endpoints.filter((e) => nodes.get(e)?.status === 'unreachable');
    if (lost.length > 0) {
      link.health = 'down';
      link.health_reasons.unshift(`${lost.join(', ')} not answering`);
    }
    // A KME that refused us may be fine; only its view of the link is missing.
    const refused = link.endpoints.filter((e) => nodes.get(e)?.status === 'refused');
    if (refused.length > 0)
      link.health_reasons.push(`${refused.join(', ')} refused our credentials: its end not shown`);
  }
  const up = reports.filter((r) => r.overview);
  return {
    generated_at: now,
    key_size: up[0]?.overview?.key_size ?? null,
    nodes: [...nodes.values()].sort((a, b) => a.id.localeCompare(b.id)),
    links: [...links.values()].sort((a, b) => a.link_ID.localeCompare(b.link_ID)),
    peers: up.flatMap((r) => r.overview!.peers.map((p) => ({ ...p, KME_ID: r.KME_ID }))),
    saes: up.flatMap((r) => r.overview!.saes.map((s) => ({ ...s, KME_ID: r.KME_ID }))),
    integrations: up.flatMap((r) => r.overview!.integrations.map((i) => ({ ...i, KME_ID: r.KME_ID }))),
    relays: up
      .flatMap((r) => (r.overview!.relays?.recent ?? []).filter((x) => x.role === 'source'))
      .sort((a, b) => b.at - a.at)
      .slice(0, 12),
  };
}

/** A line per revocation list that is not fine: after it expires, handshakes checked against it fail. */
function crlWarnings(o: KmeOverview): string[] {
  return (o.crls ?? [])
    .filter((c) => c.state !== 'ok')
    .map((c) => {
      const list = `${c.api} revocation list`;
      if (c.state === 'unreadable') return `${list} unreadable: ${c.error ?? 'unknown error'}`;
      if (c.state === 'expired') return `${list} expired at ${c.next_update}: handshakes fail; run qks pki renew-crl`;
      const hours = (c.seconds_left ?? 0) / 3600;
      const left = hours >= 48 ? `${Math.floor(hours / 24)} days` : `${Math.max(0, Math.round(c.seconds_left ?? 0))} s`;
      return `${list} expires in ${left} (${c.next_update})${c.renew ? '' : '; renewal is off: run qks pki renew-crl'}`;
    });
}
