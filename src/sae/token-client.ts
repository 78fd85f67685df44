import { Agent, fetch } from 'undici';
import type { AuthHeaders } from './kme-client.js';

export interface ClientCredentials {
  /** The issuer; the token endpoint comes from its discovery document unless given. */
  readonly issuer: string;
  readonly tokenEndpoint?: string;
  readonly clientId: string;
  readonly clientSecret: string;
  /** The KME as a resource (RFC 8707 `resource`), when the issuer needs it to pick the audience. */
  readonly resource?: string;
  readonly scope?: string;
  /** PEM of the CA for the issuer's HTTPS certificate, if not a public one. */
  readonly ca?: string | Buffer;
  /** Refresh this long before the token expires (default 30 s). */
  readonly refreshBeforeMs?: number;
  readonly now?: () => number;
}

export class TokenError extends Error {
  override name = 'TokenError';
}

/**
 * OAuth2 client credentials for an SAE: fetches an access token once, reuses it until shortly
 * before it expires, and refreshes it transparently. Concurrent callers share one request.
 */
export class TokenClient {
  readonly #c: ClientCredentials;
  readonly #dispatcher: Agent | undefined;
  readonly #now: () => number;
  #token: { value: string; expiresAt: number } | undefined;
  #pending: Promise<string> | undefined;
  #endpoint: string | undefined;
  /** How many tokens were fetched; the benchmark shows the cost amortised. */
  fetched = 0;

  constructor(credentials: ClientCredentials) {
    this.#c = credentials;
    this.#dispatcher = credentials.ca ? new Agent({ connect: { ca: credentials.ca } }) : undefined;
    this.#now = credentials.now ?? Date.now;
    this.#endpoint = credentials.tokenEndpoint;
  }

  async token(): Promise<string> {
    const margin = this.#c.refreshBeforeMs ?? 30_000;
    if (this.#token && this.#now() < this.#token.expiresAt - margin) return this.#token.value;
    this.#pending ??= this.#fetchToken().finally(() => (this.#pending = undefined));
    return this.#pending;
  }

  /** For KmeClient's `authHeaders`. */
  readonly headers: AuthHeaders = async () => ({ authorization: `Bearer ${await this.token()}` });

  async #json(url: string, init?: Parameters<typeof fetch>[1]): Promise<Record<string, unknown>> {
    const send = () => fetch(url, { ...init, ...(this.#dispatcher ? { dispatcher: this.#dispatcher } : {}) });
    // A kept-alive connection the issuer closed (a restart) fails once; a fresh one is tried.
    const res = await send().catch(() => send());
    const body = (await res.json().catch(() => ({}))) as Record<string, unknown>;
    if (!res.ok) {
      const why = typeof body['error_description'] === 'string' ? body['error_description'] : body['error'];
      throw new TokenError(`token request failed with HTTP ${res.status}${why ? `: ${String(why)}` : ''}`);
    }
    return body;
  }

  async #fetchToken(): Promise<string> {
    if (!this.#endpoint) {
      const doc = await this.#json(`${this.#c.issuer.replace(/\/$/, '')}/.well-known/openid-configuration`);
      if (typeof doc['token_endpoint'] !== 'string') throw new TokenError('issuer has no token_endpoint');
      this.#endpoint = doc['token_endpoint'];
    }
    const form = new URLSearchParams({ grant_type: 'client_credentials' });
    if (this.#c.resource) form.set('resource', this.#c.resource);
    if (this.#c.scope) form.set('scope', this.#c.scope);
    const basic = Buffer.from(`${encodeURIComponent(this.#c.clientId)}:${encodeURIComponent(this.#c.clientSecret)}`);
    const started = this.#now();
    const body = await this.#json(this.#endpoint, {
      method: 'POST',
      headers: {
        'content-type': 'application/x-www-form-urlencoded',
        authorization: `Basic ${basic.toString('base64')}`,
      },
      body: form.toString(),
    });
    const value = body['access_token'];
    const expiresIn = body['expires_in'];
    if (typeof value !== 'string') throw new TokenError('token response has no access_token');
    this.#token = { value, expiresAt: started + (typeof expiresIn === 'number' ? expiresIn : 60) * 1000 };
    this.fetched += 1;
    return value;
  }

  async close(): Promise<void> {
    await this.#dispatcher?.close();
  }
}
