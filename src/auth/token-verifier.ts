import { createRemoteJWKSet, customFetch, errors, jwtVerify, type JWTPayload } from 'jose';
import { fetch, Agent } from 'undici';

/** Settings of the OIDC issuer whose access tokens this KME accepts (docs/authentication.md). */
export interface OidcSettings {
  /** The issuer identifier; its discovery document is at `<issuer>/.well-known/openid-configuration`. */
  readonly issuer: string;
  /** The audience tokens must be issued for (this KME, as a resource server). */
  readonly audience: string;
  /** Signature algorithms accepted. Asymmetric only: `none` and HMAC are never accepted. */
  readonly algorithms?: readonly string[];
  /** The claim that carries the SAE ID (RFC 9068 `client_id`; Keycloak `azp` or a mapper's claim). */
  readonly saeClaim?: string;
  /** PEM of the CA that issued the issuer's HTTPS certificate, if not a public one. */
  readonly ca?: string | Buffer;
  readonly clockToleranceSeconds?: number;
  /**
   * For tests and development only: accept an `http://` issuer and JWKS URI on the loopback
   * interface. Anywhere else plain HTTP would let anyone on the path hand the KME signing keys.
   */
  readonly allowLoopbackHttp?: boolean;
  /** First wait after a failed discovery before the next try; it doubles up to a minute. */
  readonly discoveryRetryMs?: number;
}

export interface TokenIdentity {
  readonly sae: string;
  readonly scopes: readonly string[];
  readonly expiresAt: number;
}

/** A refused token; `reason` is for the log, never for the client. */
export class TokenRefused extends Error {
  override name = 'TokenRefused';
}

const ASYMMETRIC = /^(RS|PS|ES)(256|384|512)$|^EdDSA$|^ES256K$/;
const LOOPBACK = new Set(['127.0.0.1', 'localhost', '[::1]']);
const MAX_DISCOVERY_RETRY_MS = 60_000;

/** Why a URL may not carry the issuer's keys, or undefined: HTTPS, or HTTP to loopback where allowed. */
export function insecureUrl(url: string, allowLoopbackHttp = false): string | undefined {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    return `${url} is not a URL`;
  }
  if (parsed.protocol === 'https:') return undefined;
  if (parsed.protocol === 'http:' && allowLoopbackHttp && LOOPBACK.has(parsed.hostname)) return undefined;
  return `${url} must be https://${allowLoopbackHttp ? ' (or http:// on loopback)' : ''}`;
}
export const DEFAULT_ALGORITHMS = ['ES256', 'ES384', 'RS256', 'PS256', 'EdDSA'] as const;

/**
 * Verifies `Authorization: Bearer` JWT access tokens: signature by a key from the issuer's JWKS
 * (fetched and cached; an unknown `kid` triggers a refetch, so key rotation needs no restart),
 * pinned algorithms, issuer, audience, expiry and not-before.
 */
export class TokenVerifier {
  readonly #settings: OidcSettings;
  readonly #algorithms: string[];
  readonly #fetch: typeof fetch;
  #jwks: ReturnType<typeof createRemoteJWKSet> | undefined;
  /** The discovery under way, if any: callers share it rather than fetch again. */
  #discovering: Promise<ReturnType<typeof createRemoteJWKSet>> | undefined;
  /** After a failed discovery: no new try before `until`, and the wait doubles each time. */
  #failed: { until: number; waitMs: number; reason: string } | undefined;
  readonly #verified = new Map<string, TokenIdentity>();
  /** After a failed fetch of the key set: the same back-off as discovery's. */
  #jwksFailed: { until: number; waitMs: number } | undefined;

  constructor(settings: OidcSettings) {
    const insecure = insecureUrl(settings.issuer, settings.allowLoopbackHttp);
    if (insecure) throw new TypeError(`OIDC issuer ${insecure}`);
    this.#algorithms = [...(settings.algorithms ?? DEFAULT_ALGORITHMS)];
    const weak = this.#algorithms.filter((a) => !ASYMMETRIC.test(a));
    if (weak.length > 0) throw new TypeError(`token algorithms must be asymmetric; refused: ${weak.join(', ')}`);
    this.#settings = settings;
    const dispatcher = settings.ca ? new Agent({ connect: { ca: settings.ca } }) : undefined;
    const send: typeof fetch = (url, init) => fetch(url, { ...init, ...(dispatcher ? { dispatcher } : {}) });
    // A kept-alive connection the issuer closed (a restart) fails once; a fresh one is tried.
    this.#fetch = (url, init) => send(url, init).catch(() => send(url, init));
  }

  /**
   * The issuer's key set, found by discovery once. While discovery fails, tokens are refused without
   * asking the issuer again until a back-off has passed, and one discovery at most is in flight:
   * bearer strings from anyone must not become a stream of requests to the issuer.
   */
  #keys(): Promise<ReturnType<typeof createRemoteJWKSet>> {
    if (this.#jwks) return Promise.resolve(this.#jwks);
    if (this.#discovering) return this.#discovering;
    const failed = this.#failed;
    if (failed && Date.now() < failed.until) {
      return Promise.reject(new TokenRefused(`${failed.reason} (next try in ${failed.until - Date.now()} ms)`));
    }
    this.#discovering = this.#discover().then(
      (jwks) => {
        this.#failed = undefined;
        return (this.#jwks = jwks);
      },
      (err: unknown) => {
        const waitMs = failed
          ? Math.min(2 * failed.waitMs, MAX_DISCOVERY_RETRY_MS)
          : (this.#settings.discoveryRetryMs ?? 1000);
        const reason = err instanceof TokenRefused ? err.message : `issuer discovery failed: ${(err as Error).message}`;
        this.#failed = { until: Date.now() + waitMs, waitMs, reason };
        throw err instanceof TokenRefused ? err : new TokenRefused(reason);
      },
    );
    return this.#discovering.finally(() => (this.#discovering = undefined));
  }

  async #discover(): Promise<ReturnType<typeof createRemoteJWKSet>> {
    const base = this.#settings.issuer.replace(/\/$/, '');
    const res = await this.#fetch(`${base}/.well-known/openid-configuration`);
    if (!res.ok) throw new TokenRefused(`issuer discovery failed with HTTP ${res.status}`);
    const doc = (await res.json()) as { issuer?: string; jwks_uri?: string };
    if (doc.issuer !== this.#settings.issuer) throw new TokenRefused(`discovery names issuer ${doc.issuer}`);
    if (!doc.jwks_uri) throw new TokenRefused('discovery document has no jwks_uri');
    const insecure = insecureUrl(doc.jwks_uri, this.#settings.allowLoopbackHttp);
    if (insecure) throw new TokenRefused(`discovery names jwks_uri ${insecure}`);
    return createRemoteJWKSet(new URL(doc.jwks_uri), {
      cooldownDuration: 5_000,
      cacheMaxAge: 10 * 60_000,
      [customFetch]: (url, init) =>
        this.#fetchKeys(url, init as Parameters<typeof fetch>[1]) as unknown as Promise<Response>,
    });
  }

  /**
   * jose fetches the key set again for any token while it holds none (its cool-down starts only after
   * a success): while the issuer's key set fails, tokens must not each become a request to it.
   */
  async #fetchKeys(url: string, init: Parameters<typeof fetch>[1]): ReturnType<typeof fetch> {
    const failed = this.#jwksFailed;
    if (failed && Date.now() < failed.until) {
      throw new TokenRefused(`the issuer's key set is unavailable (next try in ${failed.until - Date.now()} ms)`);
    }
    const fail = () => {
      const waitMs = failed
        ? Math.min(2 * failed.waitMs, MAX_DISCOVERY_RETRY_MS)
        : (this.#settings.discoveryRetryMs ?? 1000);
      this.#jwksFailed = { until: Date.now() + waitMs, waitMs };
    };
    try {
      const res = await this.#fetch(url, init);
      if (res.ok) this.#jwksFailed = undefined;
      else fail();
      return res;
    } catch (err) {
      fail();
      throw err;
    }
  }

  /**
   * The SAE a token speaks for; throws TokenRefused with the reason. A token verified once is
   * remembered until it expires, so an SAE reusing its token (as it should) costs one signature
   * check per token, not one per request.
   */
  async verify(token: string): Promise<TokenIdentity> {
    const known = this.#verified.get(token);
    if (known) {
      if (Date.now() < known.expiresAt) return known;
      this.#verified.delete(token);
    }
    const identity = await this.#verifyNow(token);
    if (this.#verified.size >= 10_000) this.#verified.delete(this.#verified.keys().next().value!);
    this.#verified.set(token, identity);
    return identity;
  }

  async #verifyNow(token: string): Promise<TokenIdentity> {
    let payload: JWTPayload;
    try {
      // Keys are asked for only once the token has parsed and names an allowed algorithm.
      const keys = async (...args: Parameters<ReturnType<typeof createRemoteJWKSet>>) => (await this.#keys())(...args);
      ({ payload } = await jwtVerify(token, keys, {
        issuer: this.#settings.issuer,
        audience: this.#settings.audience,
        algorithms: this.#algorithms,
        clockTolerance: this.#settings.clockToleranceSeconds ?? 5,
        requiredClaims: ['exp'],
      }));
    } catch (err) {
      if (err instanceof TokenRefused) throw err;
      const code = err instanceof errors.JOSEError ? err.code : 'ERR_UNKNOWN';
      throw new TokenRefused(`${code}: ${(err as Error).message}`);
    }
    const claim = this.#settings.saeClaim ?? 'client_id';
    const sae = payload[claim];
    if (typeof sae !== 'string' || sae === '') throw new TokenRefused(`token has no ${claim} claim`);
    const scope = payload['scope'];
    return {
      sae,
      scopes: typeof scope === 'string' ? scope.split(' ').filter(Boolean) : [],
      expiresAt: (payload.exp ?? 0) * 1000,
    };
  }
}
