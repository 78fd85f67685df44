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
  readonly #verified = new Map<string, TokenIdentity>();

  constructor(settings: OidcSettings) {
    this.#algorithms = [...(settings.algorithms ?? DEFAULT_ALGORITHMS)];
    const weak = this.#algorithms.filter((a) => !ASYMMETRIC.test(a));
    if (weak.length > 0) throw new TypeError(`token algorithms must be asymmetric; refused: ${weak.join(', ')}`);
    this.#settings = settings;
    const dispatcher = settings.ca ? new Agent({ connect: { ca: settings.ca } }) : undefined;
    const send: typeof fetch = (url, init) => fetch(url, { ...init, ...(dispatcher ? { dispatcher } : {}) });
    // A kept-alive connection the issuer closed (a restart) fails once; a fresh one is tried.
    this.#fetch = (url, init) => send(url, init).catch(() => send(url, init));
  }

  async #keys(): Promise<ReturnType<typeof createRemoteJWKSet>> {
    if (this.#jwks) return this.#jwks;
    const base = this.#settings.issuer.replace(/\/$/, '');
    const res = await this.#fetch(`${base}/.well-known/openid-configuration`);
    if (!res.ok) throw new TokenRefused(`issuer discovery failed with HTTP ${res.status}`);
    const doc = (await res.json()) as { issuer?: string; jwks_uri?: string };
    if (doc.issuer !== this.#settings.issuer) throw new TokenRefused(`discovery names issuer ${doc.issuer}`);
    if (!doc.jwks_uri) throw new TokenRefused('discovery document has no jwks_uri');
    this.#jwks = createRemoteJWKSet(new URL(doc.jwks_uri), {
      cooldownDuration: 5_000,
      cacheMaxAge: 10 * 60_000,
      [customFetch]: (url, init) =>
        this.#fetch(url, init as Parameters<typeof fetch>[1]) as unknown as Promise<Response>,
    });
    return this.#jwks;
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
      ({ payload } = await jwtVerify(token, await this.#keys(), {
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
