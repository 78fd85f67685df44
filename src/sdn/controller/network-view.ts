import type { PceLink, PceNetwork } from '../../domain/pce.js';

/**
 * The controller's picture of the QKD network, assembled from the ETSI GS QKD 015 documents its
 * KMEs serve (src/sdn/node-model.ts makes them): nodes by their qkdn_id, physical links by their
 * qkdl_id (the same at both ends), each end's secure key rate and key availability. Pure.
 */
export interface KmeEntry {
  readonly id: string;
  /** The site's IPv4 router ID: PCEP endpoints and ERO hops name nodes by it. */
  readonly nodeAddress: string;
  readonly trusted: boolean;
}

/** The latest answer of one KME's node interface: its document, or why there is none. */
export interface NodeSnapshot {
  readonly kmeId: string;
  readonly at: number;
  readonly doc?: unknown;
  readonly error?: string;
}

export interface ViewNode extends KmeEntry {
  readonly uuid?: string;
  readonly status: string;
  readonly reachable: boolean;
  readonly error?: string;
}

export interface ViewLink extends PceLink {
  readonly uuid: string;
  readonly qber?: number;
}

export interface NetworkView {
  readonly nodes: readonly ViewNode[];
  readonly links: readonly ViewLink[];
}

const EXT_AVAILABILITY = 'qks-sdn-ext:key_availability_bits';
const record = (v: unknown): Record<string, unknown> =>
  typeof v === 'object' && v !== null && !Array.isArray(v) ? (v as Record<string, unknown>) : {};
const list = (v: unknown): unknown[] => (Array.isArray(v) ? v : []);
/** `etsi-qkd-node-types:PHYS` → `PHYS` (RFC 7951 qualifies identities with their module). */
const bare = (v: unknown) => (typeof v === 'string' ? v.replace(/^[^:]*:/, '') : '');

interface LinkEnd {
  kme: string;
  remoteUuid: string;
  status: string;
  rateBps: number;
  availableBits: number;
  qber?: number;
}

/** One KME's physical link ends, as its document states them. */
function linkEnds(kme: string, node: Record<string, unknown>): Map<string, LinkEnd> {
  const ends = new Map<string, LinkEnd>();
  for (const raw of list(record(node['qkd_links'])['qkd_link'])) {
    const l = record(raw);
    if (bare(l['qkdl_type']) !== 'PHYS' || typeof l['qkdl_id'] !== 'string') continue;
    const perf = record(l['qkdl_performance']);
    const qber = list(perf['phys_perf'])
      .map(record)
      .find((p) => bare(p['perf_type']) === 'QBER')?.['value'];
    ends.set(l['qkdl_id'], {
      kme,
      remoteUuid: String(record(l['qkdl_remote'])['qkdn_id'] ?? ''),
      status: bare(l['qkdl_status']),
      rateBps: typeof perf['skr'] === 'number' ? perf['skr'] : 0,
      availableBits: Number(perf[EXT_AVAILABILITY] ?? 0) || 0,
      ...(qber !== undefined && Number.isFinite(Number(qber)) ? { qber: Number(qber) } : {}),
    });
  }
  return ends;
}

/**
 * Nodes and links from the latest snapshots. A link is up when both its KMEs answered and both
 * report it generating or holding keys (ACTIVE or PASSIVE); its rate is the lower of the two ends'.
 */
export function buildNetworkView(
  entries: readonly KmeEntry[],
  snapshots: ReadonlyMap<string, NodeSnapshot>,
): NetworkView {
  const byUuid = new Map<string, string>();
  const ends = new Map<string, LinkEnd[]>();
  const nodes: ViewNode[] = entries.map((e) => {
    const snap = snapshots.get(e.id);
    const node = record(record(snap?.doc)['etsi-qkd-sdn-node:qkd_node']);
    const uuid = typeof node['qkdn_id'] === 'string' ? node['qkdn_id'] : undefined;
    if (!uuid) return { ...e, status: 'UNKNOWN', reachable: false, ...(snap?.error ? { error: snap.error } : {}) };
    byUuid.set(uuid, e.id);
    for (const [id, end] of linkEnds(e.id, node)) ends.set(id, [...(ends.get(id) ?? []), end]);
    return { ...e, uuid, status: bare(node['qkdn_status']) || 'UNKNOWN', reachable: true };
  });
  const links: ViewLink[] = [];
  for (const [uuid, seen] of ends) {
    const first = seen[0]!;
    const other = byUuid.get(first.remoteUuid);
    if (!other) continue;
    const generating = (s: string) => s === 'ACTIVE' || s === 'PASSIVE';
    const up = seen.length === 2 && seen.every((s) => generating(s.status));
    const [a, b] = [first.kme, other].sort() as [string, string];
    links.push({
      uuid,
      id: uuid,
      a,
      b,
      up,
      rateBps: Math.min(...seen.map((s) => s.rateBps)),
      availableBits: Object.fromEntries(seen.map((s) => [s.kme, s.availableBits])),
      ...(seen.some((s) => s.qber !== undefined) ? { qber: Math.max(...seen.map((s) => s.qber ?? 0)) } : {}),
    });
  }
  links.sort((x, y) => `${x.a} ${x.b}`.localeCompare(`${y.a} ${y.b}`));
  return { nodes, links };
}

/** What the PCE computes on: reachable nodes only, and their links. */
export function pceNetworkOf(view: NetworkView): PceNetwork {
  const reachable = new Set(view.nodes.filter((n) => n.reachable).map((n) => n.id));
  return {
    nodes: view.nodes.filter((n) => reachable.has(n.id)).map((n) => ({ id: n.id, trusted: n.trusted })),
    links: view.links.filter((l) => reachable.has(l.a) && reachable.has(l.b)),
  };
}
