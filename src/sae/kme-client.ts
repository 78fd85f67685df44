import { readFileSync } from 'node:fs';
import { Agent, request } from 'undici';

import type { DeliveredKey, KeyContainer, KeyRequestBody, KeyStatus } from '../domain/etsi-messages.js';
import type { IntegrationReport } from '../domain/integration-report.js';
import type { KmeOverview } from '../kme/observability/overview.js';

export type { DeliveredKey, KeyContainer, KeyStatus };
export type KeyRequest = KeyRequestBody;
export type { IntegrationReport, KmeOverview };

/** Supplies request headers, e.g. `Authorization: Bearer …` from an OAuth2 client. */
export type AuthHeaders = () => Promise<Record<string, string>>;

export interface KmeClientOptions {
  /** The KME's base URL, e.g. `https://127.0.0.1:8443`. */
  readonly url: string;
  /** PEM of the CA that issued the KME's certificate, or a path to it. */
  readonly ca: string | Buffer;
  /** The SAE's client certificate and key (PEM or paths); the standard's way to authenticate. */
  readonly cert?: string | Buffer;
  readonly key?: string | Buffer;
  /** Token-based authentication instead of, or beside, the client certificate. */
  readonly authHeaders?: AuthHeaders;
  readonly timeoutMs?: number;
  /** Attempts on 503 (server busy, peer KME down, pool empty) before giving up. */
  readonly retries?: number;
  readonly retryBaseMs?: number;
}

/** A KME answered with an error; `status` is 400, 401 or 503 and `message` is the KME's own. */
export class KmeError extends Error {
  override name = 'KmeError';
  constructor(
    readonly status: number,
    message: string,
    readonly details?: unknown[],
  ) {
    super(message);
  }
}

const pem = (v: string | Buffer): string | Buffer =>
  typeof v === 'string' && !v.includes('-----BEGIN') ? readFileSync(v) : v;

/** A typed ETSI GS QKD 014 client for SAEs: mutual TLS, keep-alive, timeouts, retries on 503. */
export class KmeClient {
  readonly #opts: KmeClientOptions;
  readonly #agent: Agent;

  constructor(opts: KmeClientOptions) {
    this.#opts = opts;
    const timeout = opts.timeoutMs ?? 10_000;
    this.#agent = new Agent({
      connect: {
        ca: pem(opts.ca),
        ...(opts.cert ? { cert: pem(opts.cert) } : {}),
        ...(opts.key ? { key: pem(opts.key) } : {}),
        timeout,
      },
      headersTimeout: timeout,
      bodyTimeout: timeout,
      keepAliveTimeout: 30_000,
    });
  }

  status(slaveSaeId: string): Promise<KeyStatus> {
    return this.#call('GET', `/api/v1/keys/${encodeURIComponent(slaveSaeId)}/status`);
  }

  /** Get key (POST): keys for `slaveSaeId`, cut by this SAE's KME. */
  getKeys(slaveSaeId: string, req: KeyRequest = {}): Promise<KeyContainer> {
    return this.#call('POST', `/api/v1/keys/${encodeURIComponent(slaveSaeId)}/enc_keys`, req);
  }

  /** Get key with key IDs (POST): the keys `masterSaeId` obtained for this SAE. */
  getKeysWithIds(masterSaeId: string, keyIds: readonly string[]): Promise<KeyContainer> {
    return this.#call('POST', `/api/v1/keys/${encodeURIComponent(masterSaeId)}/dec_keys`, {
      key_IDs: keyIds.map((key_ID) => ({ key_ID })),
    });
  }

  /** Get key (GET form): only `number` and `size`, as query parameters. */
  getKeysByQuery(slaveSaeId: string, number?: number, size?: number): Promise<KeyContainer> {
    const query = new URLSearchParams();
    if (number !== undefined) query.set('number', String(number));
    if (size !== undefined) query.set('size', String(size));
    const q = query.size > 0 ? `?${query}` : '';
    return this.#call('GET', `/api/v1/keys/${encodeURIComponent(slaveSaeId)}/enc_keys${q}`);
  }

  /** Get key with key IDs (GET form): one key. */
  getKeyWithId(masterSaeId: string, keyId: string): Promise<KeyContainer> {
    const q = new URLSearchParams({ key_ID: keyId });
    return this.#call('GET', `/api/v1/keys/${encodeURIComponent(masterSaeId)}/dec_keys?${q}`);
  }

  /** This SAE's preferences at its KME (`GET /api/v1/preferences`, the earlier QKS's extension). */
  preferences(): Promise<{ SAE_ID: string; preferences: { key_exchange_timeout: number; log_level: string } }> {
    return this.#call('GET', '/api/v1/preferences');
  }

  /**
   * Tells this SAE's KME what one of its integration agents (tunnel, stunnel, IPsec) is doing, for
   * the operator dashboard: the key ID in use and when it rotates next. Returns the stored report.
   */
  reportIntegration(report: IntegrationReport): Promise<IntegrationReport & { SAE_ID: string }> {
    return this.#call('POST', '/api/v1/integrations/report', report);
  }

  /** What the KME's dashboard shows of it; needs an administrator's certificate or token. */
  overview(): Promise<KmeOverview> {
    return this.#call('GET', '/api/v1/admin/overview');
  }

  /** The KME's Prometheus metrics (text format); needs an administrator's certificate or token. */
  async metrics(): Promise<string> {
    return this.#call('GET', '/metrics', undefined, true);
  }

  async #call<T>(method: 'GET' | 'POST', path: string, body?: unknown, asText = false): Promise<T> {
    const attempts = 1 + (this.#opts.retries ?? 3);
    for (let attempt = 1; ; attempt++) {
      try {
        return await this.#once<T>(method, path, body, asText);
      } catch (err) {
        if (!(err instanceof KmeError) || err.status !== 503 || attempt >= attempts) throw err;
        const base = this.#opts.retryBaseMs ?? 100;
        await new Promise((r) => setTimeout(r, base * 2 ** (attempt - 1) * (0.5 + Math.random())));
      }
    }
  }

  async #once<T>(method: 'GET' | 'POST', path: string, body: unknown, asText: boolean): Promise<T> {
    const headers: Record<string, string> = { ...(await this.#opts.authHeaders?.()) };
    if (body !== undefined) headers['content-type'] = 'application/json';
    const res = await request(this.#opts.url + path, {
      method,
      dispatcher: this.#agent,
      headers,
      ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
    });
    const text = await res.body.text();
    if (res.statusCode === 200) return (asText ? text : JSON.parse(text)) as T;
    if (res.statusCode === 401) {
      // The KME keeps its reason to its log: a caller it refuses learns nothing of its SAEs.
      throw new KmeError(
        401,
        'unauthorized: the KME did not accept this SAE; its log says why (an SAE it does not serve, ' +
          'a revoked certificate); qks pki issue --sae ID --kme KME registers a new SAE at its KME',
      );
    }
    let parsed: { message?: unknown; details?: unknown } = {};
    try {
      parsed = JSON.parse(text) as typeof parsed;
    } catch {
      // Not an ETSI error body; the status says enough.
    }
    const message = typeof parsed.message === 'string' ? parsed.message : `KME answered ${res.statusCode}`;
    throw new KmeError(res.statusCode, message, Array.isArray(parsed.details) ? parsed.details : undefined);
  }

  close(): Promise<void> {
    return this.#agent.close();
  }
}
