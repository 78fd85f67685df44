import { KmeClient, KmeError, type KmeClientOptions } from '../sae/kme-client.js';
import { buildNetwork, type KmeReport, type NetworkView } from './network.js';

export interface CollectorOptions {
  /** Base URLs of the KMEs' SAE APIs. */
  readonly urls: readonly string[];
  /**
   * Their KME IDs where the caller knows them (a manifest), in the same order: a KME that has not
   * answered with its overview yet is shown under this ID rather than its host and port.
   */
  readonly ids?: ReadonlyArray<string | undefined>;
  /** An administrator's credentials (operator certificate and/or token), as for the SDK. */
  readonly client: Omit<KmeClientOptions, 'url'>;
  /** A view is reused for this long before the KMEs are asked again. */
  readonly maxAgeMs?: number;
  readonly now?: () => number;
}

/**
 * Asks several KMEs for their overviews (as an administrator) and merges them into one network
 * view. Concurrent callers share one round of requests; a KME that does not answer is shown as
 * unreachable, one that answers 401 or 403 as refusing our credentials, under the ID it last gave.
 */
export class NetworkCollector {
  readonly #clients: Array<{ url: string; client: KmeClient; id: string | undefined }>;
  readonly #maxAge: number;
  readonly #now: () => number;
  #view: NetworkView | undefined;
  #pending: Promise<NetworkView> | undefined;

  constructor(opts: CollectorOptions) {
    if (opts.urls.length === 0) throw new TypeError('at least one KME URL is needed');
    this.#clients = opts.urls.map((url, i) => ({
      url,
      id: opts.ids?.[i],
      client: new KmeClient({ timeoutMs: 3000, ...opts.client, url, retries: 0 }),
    }));
    this.#maxAge = opts.maxAgeMs ?? 900;
    this.#now = opts.now ?? Date.now;
  }

  view(): Promise<NetworkView> {
    if (this.#view && this.#now() - this.#view.generated_at < this.#maxAge) return Promise.resolve(this.#view);
    this.#pending ??= this.#collect().finally(() => (this.#pending = undefined));
    return this.#pending;
  }

  async reports(): Promise<KmeReport[]> {
    return Promise.all(
      this.#clients.map(async (c): Promise<KmeReport> => {
        try {
          const overview = await c.client.overview();
          c.id = overview.KME_ID;
          return { KME_ID: overview.KME_ID, url: c.url, reachable: true, overview };
        } catch (err) {
          const KME_ID = c.id ?? new URL(c.url).host;
          const status = err instanceof KmeError ? err.status : undefined;
          if (status === 401 || status === 403) {
            const error = `HTTP ${status}: not an administrator there (check access.operators, revocation, the token's scope)`;
            return { KME_ID, url: c.url, reachable: true, httpStatus: status, error };
          }
          return { KME_ID, url: c.url, reachable: false, error: (err as Error).message };
        }
      }),
    );
  }

  async #collect(): Promise<NetworkView> {
    this.#view = buildNetwork(await this.reports(), this.#now());
    return this.#view;
  }

  async close(): Promise<void> {
    await Promise.all(this.#clients.map((c) => c.client.close()));
  }
}
