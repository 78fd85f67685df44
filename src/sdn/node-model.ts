import type { SourceState } from '../sources/key-source.js';
import { interfaceId, nodeUuid, pairAppUuid, physLinkUuid, virtLinkUuid } from './ids.js';
import { buildApps, type DeliveryInput, type QkdApp, type RegisteredApp } from './node-apps.js';

/**
 * The ETSI GS QKD 015 V2.1.1 view of one KME (module `etsi-qkd-sdn-node`, revision 2022-01-30, and
 * its types module `etsi-qkd-node-types`, as ETSI publishes them at forge.etsi.org/rep/qkd/
 * gs015-ctrl-int-sdn and as they are mirrored on GitHub), built from what the KME knows, as the
 * RFC 7951 JSON a RESTCONF server answers. Pure: no I/O, no clock (the caller gives `now`).
 * docs/sdn.md says where every value comes from.
 */

export const NODE_MODULE = 'etsi-qkd-sdn-node';
export const TYPES_MODULE = 'etsi-qkd-node-types';
/** Our own module for the figures 015 V2.1.1 lacks (RFC 7951 §4: its members are qualified). */
export const EXT_MODULE = 'qks-sdn-ext';
export const KEY_AVAILABILITY = `${EXT_MODULE}:key_availability_bits`;
/** Consumption and bandwidth are averaged over this window. */
export const RATE_WINDOW_MS = 60_000;

const UINT32_MAX = 4_294_967_295;
export const uint32 = (n: number): number => Math.min(UINT32_MAX, Math.max(0, Math.round(n)));
/** RFC 7951 §6.8: an identityref from another module is qualified with that module's name. */
export const identity = (name: string): string => `${TYPES_MODULE}:${name}`;

export interface LinkInput {
  readonly linkId: string;
  readonly peerKme: string;
  /** The key source's kind (`qkd-simulator`, `simulated`, ...) and protocol, as it states them. */
  readonly kind: string;
  readonly protocol: string;
  readonly state: SourceState;
  /** Secret key rate, bit/s; null before the link has measured one. */
  readonly skrBps: number | null;
  /** Latest QBER (0..1) where the source measures it. */
  readonly qber: number | null;
  /** Bits of this KME's own share in the pool: what keys can be cut from now. */
  readonly availableBits: number;
}

/** One relay from the KME's relay log (source or trusted node on `path`). */
export interface RelayInput {
  readonly at: number;
  readonly path: readonly string[];
  /** Key bits relayed; 0 when not recorded. */
  readonly bits: number;
  readonly ok: boolean;
}

export interface NodeInput {
  readonly kmeId: string;
  readonly version: string;
  readonly location: string;
  /** False for a KME the network lists as untrusted: it relays no keys. */
  readonly relays: boolean;
  readonly now: number;
  readonly links: readonly LinkInput[];
  readonly relayLog: readonly RelayInput[];
  readonly deliveries: readonly DeliveryInput[];
  readonly registered: readonly RegisteredApp[];
  /** Relay paths a controller installed here (centralized mode): shown as VIRT links with their path. */
  readonly installed?: ReadonlyArray<{ readonly id: string; readonly path: readonly string[] }>;
  /** The KME serving an SAE, if known. */
  readonly kmeOfSae: (sae: string) => string | undefined;
}

export interface QkdInterface {
  qkdi_id: number;
  qkdi_model: string;
  qkdi_type?: string;
  qkdi_att_point: { device: string };
  qkdi_status: string;
}

export interface QkdLink {
  qkdl_id: string;
  qkdl_status: string;
  qkdl_enable: boolean;
  qkdl_local: { qkdn_id: string; qkdi_id?: number };
  qkdl_remote: { qkdn_id: string; qkdi_id?: number };
  qkdl_type: string;
  qkdl_applications?: string[];
  virt_prev_hop?: string;
  virt_next_hop?: string[];
  virt_bandwidth?: number;
  qkdl_performance: Record<string, unknown>;
  'qks-sdn-ext:path'?: string[];
}

export interface QkdNode {
  qkdn_id: string;
  qkdn_status: string;
  qkdn_version: string;
  qkdn_location_id: string;
  qkdn_capabilities: {
    link_stats_support: boolean;
    application_stats_support: boolean;
    key_relay_mode_enable: boolean;
  };
  qkd_applications: { qkd_app: QkdApp[] };
  qkd_interfaces: { qkd_interface: QkdInterface[] };
  qkd_links: { qkd_link: QkdLink[] };
}

export type NodeDocument = { 'etsi-qkd-sdn-node:qkd_node': QkdNode };

const IFACE_STATUS: Record<SourceState, string> = {
  starting: 'ENABLED',
  running: 'ENABLED',
  stopped: 'DISABLED',
  failed: 'FAILED',
};

/** ACTIVE: generating; PASSIVE: not generating, keys left; PENDING: starting, none yet; OFF: neither. */
function physStatus(l: LinkInput): string {
  if (l.state === 'running') return 'ACTIVE';
  if (l.availableBits > 0) return 'PASSIVE';
  return l.state === 'starting' ? 'PENDING' : 'OFF';
}

function nodeStatus(links: readonly LinkInput[]): string {
  if (links.some((l) => l.state === 'running')) return 'OPERATING';
  return links.length > 0 && links.every((l) => l.state === 'starting') ? 'NEW' : 'DOWN';
}

/** The relay paths in the log, one VIRT link each (newest record first), and this KME's neighbours on it. */
function virtualLinks(input: NodeInput): Array<{ link: QkdLink; neighbours: string[] }> {
  const byPath = new Map<string, RelayInput[]>();
  for (const r of [...input.relayLog].sort((a, b) => b.at - a.at)) {
    const key = r.path.join('>');
    byPath.set(key, [...(byPath.get(key) ?? []), r]);
  }
  return [...byPath.values()].map((records) => {
    const path = records[0]!.path;
    const at = path.indexOf(input.kmeId);
    const prev = at > 0 ? path[at - 1] : undefined;
    const next = at >= 0 && at < path.length - 1 ? path[at + 1] : undefined;
    const recent = records.filter((r) => input.now - r.at <= RATE_WINDOW_MS);
    const bits = recent.reduce((sum, r) => sum + r.bits, 0);
    const link: QkdLink = {
      qkdl_id: virtLinkUuid(path),
      qkdl_status: identity(records[0]!.ok ? 'ACTIVE' : 'OFF'),
      qkdl_enable: true,
      qkdl_local: { qkdn_id: nodeUuid(path[0]!) },
      qkdl_remote: { qkdn_id: nodeUuid(path.at(-1)!) },
      qkdl_type: identity('VIRT'),
      ...(prev ? { virt_prev_hop: nodeUuid(prev) } : {}),
      ...(next ? { virt_next_hop: [nodeUuid(next)] } : {}),
      virt_bandwidth: uint32((bits * 1000) / RATE_WINDOW_MS),
      qkdl_performance: {},
    };
    return { link, neighbours: [prev, next].filter((h): h is string => !!h) };
  });
}

/** Builds `{"etsi-qkd-sdn-node:qkd_node": {...}}` for one KME. */
export function buildNodeDocument(input: NodeInput): NodeDocument {
  const me = nodeUuid(input.kmeId);
  const virt = virtualLinks(input);
  const virtByEnds = (remoteKme: string) =>
    input.relayLog
      .filter((r) => r.path[0] === input.kmeId && r.path.at(-1) === remoteKme)
      .map((r) => virtLinkUuid(r.path));
  const apps = buildApps({
    ...input,
    me,
    backingOf: (remoteKme) => {
      const direct = input.links.filter((l) => l.peerKme === remoteKme).map((l) => physLinkUuid(l.linkId));
      return direct.length > 0 ? direct : [...new Set(virtByEnds(remoteKme))];
    },
    nodeOf: nodeUuid,
    pairId: pairAppUuid,
    rateWindowMs: RATE_WINDOW_MS,
  });
  const appsOn = (linkUuid: string) => apps.filter((a) => a.app.backing_qkdl_id?.includes(linkUuid));

  const phys: QkdLink[] = input.links.map((l) => {
    const id = physLinkUuid(l.linkId);
    const users = appsOn(id);
    // What the applications on this link took per second lately, and the relays that crossed it.
    const relayed = virt
      .filter((v) => v.neighbours.includes(l.peerKme))
      .reduce((sum, v) => sum + (v.link.virt_bandwidth ?? 0), 0);
    const consumption = users.reduce((sum, a) => sum + a.recentBps, 0) + relayed;
    return {
      qkdl_id: id,
      qkdl_status: identity(physStatus(l)),
      qkdl_enable: true,
      qkdl_local: { qkdn_id: me, qkdi_id: interfaceId(input.kmeId, l.linkId) },
      qkdl_remote: { qkdn_id: nodeUuid(l.peerKme), qkdi_id: interfaceId(l.peerKme, l.linkId) },
      qkdl_type: identity('PHYS'),
      ...(users.length > 0 ? { qkdl_applications: users.map((a) => a.app.app_id) } : {}),
      qkdl_performance: {
        expected_consumption: uint32(consumption),
        ...(l.skrBps !== null ? { skr: uint32(l.skrBps) } : {}),
        ...(l.qber !== null ? { phys_perf: [{ perf_type: identity('QBER'), value: l.qber.toFixed(3) }] } : {}),
        // uint64 in our module: RFC 7951 §6.1 writes it as a string.
        [KEY_AVAILABILITY]: String(Math.max(0, Math.floor(l.availableBits))),
      },
    };
  });
  const interfaces: QkdInterface[] = input.links.map((l) => ({
    qkdi_id: interfaceId(input.kmeId, l.linkId),
    qkdi_model: `QKS ${l.kind}: ${l.protocol}`,
    // Decoy-state BB84 is discrete-variable QKD; the shared-seed simulator is no QKD technology.
    ...(l.kind === 'qkd-simulator' ? { qkdi_type: identity('DV-QKD') } : {}),
    qkdi_att_point: { device: l.linkId },
    qkdi_status: identity(IFACE_STATUS[l.state]),
  }));
  const installed: QkdLink[] = (input.installed ?? []).map((r) => ({
    qkdl_id: r.id,
    qkdl_status: identity('ACTIVE'),
    qkdl_enable: true,
    qkdl_local: { qkdn_id: me },
    qkdl_remote: { qkdn_id: nodeUuid(r.path.at(-1)!) },
    qkdl_type: identity('VIRT'),
    virt_next_hop: [nodeUuid(r.path[1]!)],
    qkdl_performance: {},
    'qks-sdn-ext:path': [...r.path],
  }));
  const virtLinks = [
    ...installed,
    ...virt.map((v) => v.link).filter((l) => !installed.some((i) => i.qkdl_id === l.qkdl_id)),
  ].map((link) => {
    const users = appsOn(link.qkdl_id).map((a) => a.app.app_id);
    return users.length > 0 ? { ...link, qkdl_applications: users } : link;
  });
  return {
    'etsi-qkd-sdn-node:qkd_node': {
      qkdn_id: me,
      qkdn_status: identity(nodeStatus(input.links)),
      qkdn_version: input.version,
      qkdn_location_id: input.location,
      qkdn_capabilities: {
        link_stats_support: true,
        application_stats_support: true,
        key_relay_mode_enable: input.relays,
      },
      qkd_applications: { qkd_app: apps.map((a) => a.app) },
      qkd_interfaces: { qkd_interface: interfaces },
      qkd_links: { qkd_link: [...phys, ...virtLinks] },
    },
  };
}
