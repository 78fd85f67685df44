import type { Logger } from 'pino';
import { computePaths, type ComputedPath, type PathRequest } from '../../domain/pce.js';
import { buildNetworkView, pceNetworkOf, type KmeEntry, type NetworkView, type NodeSnapshot } from './network-view.js';
import { RestconfClient } from './restconf-client.js';

/** Our extension leaf of a virtual link: the KMEs of the path it installs. */
const PATH_EXT = 'qks-sdn-ext:path';

export interface ControlledKme extends KmeEntry {
  /** Where the KME serves its node interface (its SAE API listener). */
  readonly url: string;
}

export interface ControllerOptions {
  readonly kmes: readonly ControlledKme[];
  /** The operator's credentials at the KMEs: CA, certificate and key (PEM or paths). */
  readonly credentials: { readonly ca: string; readonly cert: string; readonly key: string };
  /** How often every KME's node interface is read. */
  readonly pollIntervalMs: number;
  readonly log: Logger;
}

/**
 * The SDN controller's core (docs/sdn.md): reads every KME's ETSI GS QKD 015 node interface on a
 * timer, keeps the network view (nodes, links, key rates and availability) current, and computes
 * paths on it (the PCE role). It holds no key material and no state the network needs to work:
 * KMEs keep delivering keys on their own routes while it is down.
 */
export class Controller {
  readonly #o: ControllerOptions;
  readonly #clients = new Map<string, RestconfClient>();
  readonly #snapshots = new Map<string, NodeSnapshot>();
  #view: NetworkView;
  #timer: NodeJS.Timeout | undefined;
  #polling: Promise<void> | undefined;
  #stopped = false;

  constructor(opts: ControllerOptions) {
    this.#o = opts;
    for (const k of opts.kmes) this.#clients.set(k.id, new RestconfClient({ url: k.url, ...opts.credentials }));
    this.#view = buildNetworkView(opts.kmes, this.#snapshots);
  }

  /** Reads every KME once, then keeps reading on the timer. */
  async start(): Promise<void> {
    await this.poll();
    const tick = () => {
      if (this.#stopped) return;
      void this.poll().finally(() => {
        if (!this.#stopped) this.#timer = setTimeout(tick, this.#o.pollIntervalMs);
      });
    };
    this.#timer = setTimeout(tick, this.#o.pollIntervalMs);
  }

  /** One round of reads (concurrent callers share it). */
  poll(): Promise<void> {
    this.#polling ??= this.#pollAll().finally(() => (this.#polling = undefined));
    return this.#polling;
  }

  async #pollAll(): Promise<void> {
    await Promise.all(
      this.#o.kmes.map(async (k) => {
        const at = Date.now();
        try {
          this.#snapshots.set(k.id, { kmeId: k.id, at, doc: await this.#clients.get(k.id)!.node() });
        } catch (err) {
          const before = this.#snapshots.get(k.id);
          if (!before || before.doc !== undefined)
            this.#o.log.warn({ kme: k.id, err: (err as Error).message }, 'KME not read');
          this.#snapshots.set(k.id, { kmeId: k.id, at, error: (err as Error).message });
        }
      }),
    );
    this.#view = buildNetworkView(this.#o.kmes, this.#snapshots);
  }

  view(): NetworkView {
    return this.#view;
  }

  /** Paths on the network as last read (source and destination by KME ID). */
  paths(req: PathRequest): ComputedPath[] {
    return computePaths(pceNetworkOf(this.#view), req);
  }

  /** The KME whose node address (IPv4 router ID) this is. */
  kmeAt(address: string): string | undefined {
    return this.#o.kmes.find((k) => k.nodeAddress === address)?.id;
  }

  addressOf(kmeId: string): string | undefined {
    return this.#o.kmes.find((k) => k.id === kmeId)?.nodeAddress;
  }

  client(kmeId: string): RestconfClient | undefined {
    return this.#clients.get(kmeId);
  }

  /** The relay paths installed in the KMEs (centralized mode), as their node interfaces last showed them. */
  installedPaths(): Array<{ id: string; path: string[] }> {
    const found: Array<{ id: string; path: string[] }> = [];
    for (const snap of this.#snapshots.values()) {
      const node = (snap.doc as Record<string, unknown> | undefined)?.['etsi-qkd-sdn-node:qkd_node'] as
        { qkd_links?: { qkd_link?: Array<Record<string, unknown>> } } | undefined;
      for (const l of node?.qkd_links?.qkd_link ?? []) {
        const path = l[PATH_EXT];
        if (Array.isArray(path)) found.push({ id: String(l['qkdl_id']), path: path.map(String) });
      }
    }
    return found;
  }

  /**
   * Installs a path in its first KME as a virtual link (ETSI 015 `qkd_link` of type VIRT, with the
   * hops in our `qks-sdn-ext:path`): keys from there to its last KME then take it.
   */
  async install(id: string, path: readonly string[]): Promise<void> {
    const last = path.at(-1)!;
    await this.#clients.get(path[0]!)!.write('PUT', `/qkd_links/qkd_link=${id}`, {
      'etsi-qkd-sdn-node:qkd_link': [
        {
          qkdl_id: id,
          qkdl_type: 'etsi-qkd-node-types:VIRT',
          qkdl_remote: { qkdn_id: this.#uuidOf(last) },
          [PATH_EXT]: [...path],
        },
      ],
    });
    await this.poll();
  }

  /** Removes an installed path from the KME that holds it; false when none does. */
  async uninstall(id: string): Promise<boolean> {
    const route = this.installedPaths().find((r) => r.id === id);
    if (!route) return false;
    await this.#clients.get(route.path[0]!)!.write('DELETE', `/qkd_links/qkd_link=${id}`);
    await this.poll();
    return true;
  }

  #uuidOf(kmeId: string): string {
    const uuid = this.#view.nodes.find((n) => n.id === kmeId)?.uuid;
    if (!uuid) throw new Error(`KME ${kmeId} has not been read yet`);
    return uuid;
  }

  async stop(): Promise<void> {
    this.#stopped = true;
    clearTimeout(this.#timer);
    await this.#polling?.catch(() => undefined);
    await Promise.all([...this.#clients.values()].map((c) => c.close()));
  }
}
