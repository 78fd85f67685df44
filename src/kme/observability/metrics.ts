import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import { keysFromBlocks } from '../../domain/material.js';
import type { KeyStore } from '../../stores/key-store.js';
import type { LinkPool } from '../link-pool.js';
import type { LinkHistory } from './link-history.js';
import type { PeerSyncObserver, SyncFailure } from './peer-sync.js';

export interface MetricSources {
  readonly pools: readonly LinkPool[];
  readonly history: LinkHistory;
  readonly store: KeyStore;
  readonly keySize: number;
  readonly delivered: () => { readonly toMasters: number; readonly toSlaves: number };
  /** The revocation lists checked, with their expiry (crl-upkeep.ts). */
  readonly crls?: () => ReadonlyArray<{ api: string; seconds_left: number | null }>;
}

/**
 * This KME's Prometheus metrics (docs/metrics.md), in a registry of its own so that several KMEs
 * can share a process. Pool and link gauges are read when scraped, from the same places the
 * status and information endpoints read, so both always agree.
 */
/** What one scrape reads from the store, once, whichever metrics need it. */
interface Snapshot {
  readonly blocks: ReadonlyMap<string, { own: number; peer: number }>;
  readonly ready: number;
  readonly outbox: number;
}

export class KmeMetrics implements PeerSyncObserver {
  readonly registry = new Registry();
  readonly #sources: MetricSources;
  #snapshot: Snapshot | undefined;
  readonly #requests: Counter<'method' | 'route' | 'status'>;
  readonly #latency: Histogram<'method' | 'route' | 'status'>;
  readonly #refusals: Counter<'reason'>;
  readonly #syncSeconds: Histogram<'peer'>;
  readonly #syncFailures: Counter<'peer' | 'reason'>;

  constructor(s: MetricSources) {
    this.#sources = s;
    const registers = [this.registry];
    const snap = () => this.#snapshot ?? this.#read();
    collectDefaultMetrics({ register: this.registry });
    this.#requests = new Counter({
      name: 'qks_http_requests_total',
      help: 'Requests to the SAE API, by method, route and status',
      labelNames: ['method', 'route', 'status'],
      registers,
    });
    this.#latency = new Histogram({
      name: 'qks_http_request_duration_seconds',
      help: 'Time to answer requests to the SAE API',
      labelNames: ['method', 'route', 'status'],
      buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5],
      registers,
    });
    this.#refusals = new Counter({
      name: 'qks_refusals_total',
      help: 'Requests refused, by reason (not_authenticated, access_rules, or the error code)',
      labelNames: ['reason'],
      registers,
    });
    this.#syncSeconds = new Histogram({
      name: 'qks_peer_sync_seconds',
      help: 'Round trip of a reservation batch on the KME-to-KME channel, until the peer confirmed',
      labelNames: ['peer'],
      buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5],
      registers,
    });
    this.#syncFailures = new Counter({
      name: 'qks_peer_sync_failures_total',
      help: 'Reservations the peer KME did not confirm: unreachable, or refused',
      labelNames: ['peer', 'reason'],
      registers,
    });

    const perPool = async (fn: (pool: LinkPool) => Promise<number> | number | null, gauge: Gauge<'link'>) => {
      gauge.reset();
      for (const pool of s.pools) {
        const v = await fn(pool);
        if (v !== null) gauge.set({ link: pool.linkId }, v);
      }
    };
    new Gauge({
      name: 'qks_pool_blocks',
      help: 'Blocks of link material held, by link and share (own: this KME cuts keys from them)',
      labelNames: ['link', 'share'],
      registers,
      async collect() {
        for (const [link, { own, peer }] of (await snap()).blocks) {
          this.set({ link, share: 'own' }, own);
          this.set({ link, share: 'peer' }, peer);
        }
      },
    });
    new Gauge({
      name: 'qks_pool_capacity_blocks',
      help: 'Most own blocks kept per link',
      labelNames: ['link'],
      registers,
      collect() {
        return perPool((p) => p.capacityBlocks, this);
      },
    });
    new Gauge({
      name: 'qks_pool_keys',
      help: "Keys of the default size this KME can cut now, per link (status' stored_key_count)",
      labelNames: ['link'],
      registers,
      async collect() {
        const { blocks } = await snap();
        return perPool((p) => keysFromBlocks(p.ends.blockBits, s.keySize, blocks.get(p.linkId)!.own), this);
      },
    });
    new Gauge({
      name: 'qks_link_key_rate_bps',
      help: 'Secret key rate of each link over the latest sampling window, bit/s',
      labelNames: ['link'],
      registers,
      collect() {
        return perPool((p) => p.source.info().stats?.secretBps ?? s.history.latest(p.linkId)?.rateBps ?? null, this);
      },
    });
    new Gauge({
      name: 'qks_link_qber',
      help: 'Quantum bit error rate of each link that measures it, 0..1',
      labelNames: ['link'],
      registers,
      collect() {
        return perPool((p) => p.source.info().stats?.qber ?? null, this);
      },
    });
    new Gauge({
      name: 'qks_link_up',
      help: 'Whether the key source of each link is running (1) or not (0)',
      labelNames: ['link'],
      registers,
      collect() {
        return perPool((p) => (p.source.info().state === 'running' ? 1 : 0), this);
      },
    });
    new Gauge({
      name: 'qks_keys_delivered',
      help: 'Keys handed out since start, to masters (enc_keys) and to slaves (dec_keys)',
      labelNames: ['role'],
      registers,
      collect() {
        const { toMasters, toSlaves } = s.delivered();
        this.set({ role: 'master' }, toMasters);
        this.set({ role: 'slave' }, toSlaves);
      },
    });
    new Gauge({
      name: 'qks_keys_waiting_for_slaves',
      help: 'Keys stored for slave SAEs that have not fetched them yet',
      registers,
      async collect() {
        this.set((await snap()).ready);
      },
    });
    new Gauge({
      name: 'qks_crl_next_update_seconds',
      help: 'Seconds until each revocation list expires (negative: expired, every handshake checked against it fails)',
      labelNames: ['api'],
      registers,
      collect() {
        this.reset();
        for (const c of s.crls?.() ?? []) if (c.seconds_left !== null) this.set({ api: c.api }, c.seconds_left);
      },
    });
    new Gauge({
      name: 'qks_peer_outbox_cancels',
      help: 'Cancels of burned keys waiting to reach a peer KME',
      registers,
      async collect() {
        this.set((await snap()).outbox);
      },
    });
  }

  request(method: string, route: string, status: number, seconds: number): void {
    const labels = { method, route, status: String(status) };
    this.#requests.inc(labels);
    this.#latency.observe(labels, seconds);
  }

  refused(reason: string): void {
    this.#refusals.inc({ reason });
  }

  synced(peer: string, seconds: number): void {
    this.#syncSeconds.observe({ peer }, seconds);
  }

  failed(peer: string, reason: SyncFailure): void {
    this.#syncFailures.inc({ peer, reason });
  }

  async #read(): Promise<Snapshot> {
    const blocks = new Map<string, { own: number; peer: number }>();
    for (const p of this.#sources.pools) blocks.set(p.linkId, { own: await p.ownBlocks(), peer: await p.peerBlocks() });
    const { store } = this.#sources;
    return { blocks, ready: (await store.countKeys()).ready, outbox: (await store.listOutbox(1000)).length };
  }

  /** One scrape: the store is read once, then every metric is rendered from that reading. */
  async text(): Promise<string> {
    this.#snapshot = await this.#read();
    try {
      return await this.registry.metrics();
    } finally {
      this.#snapshot = undefined;
    }
  }

  get contentType(): string {
    return this.registry.contentType;
  }
}
