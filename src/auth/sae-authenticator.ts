import type { TLSSocket } from 'node:tls';
import { decodeJwt } from 'jose';
import { peerIdentity, presentedCertificate } from './tls-identity.js';
import { TokenRefused, type TokenVerifier } from './token-verifier.js';

/**
 * How SAEs prove who they are: `certificate` (the standard's way, the default), `token` (an OAuth2
 * bearer token from the OIDC issuer), `either`, or `both` (a certificate and a token naming the
 * same SAE).
 */
export type SaeAuthMode = 'certificate' | 'token' | 'either' | 'both';

export interface Caller {
  readonly sae: string;
  /** Token scopes; empty for certificate-only callers. */
  readonly scopes: readonly string[];
  readonly via: 'certificate' | 'token' | 'both';
}

/**
 * Who a refused caller claimed to be, for the log: its certificate's names and the identity claims
 * of its token (read without trusting them; never the token itself).
 */
export interface Presented {
  readonly certificate?: ReturnType<typeof presentedCertificate>;
  readonly token?: { readonly client_id?: unknown; readonly sub?: unknown; readonly iss?: unknown };
}

export type AuthResult =
  | { readonly ok: true; readonly caller: Caller }
  | { readonly ok: false; readonly reason: string; readonly presented?: Presented };

/** The claims a token names its holder by, without verifying it; undefined if it is no JWT. */
function tokenClaims(bearer: string | undefined): Presented['token'] {
  if (!bearer) return undefined;
  try {
    const { client_id, sub, iss } = decodeJwt(bearer);
    const short = (v: unknown) => (typeof v === 'string' ? v.slice(0, 128) : undefined);
    return { client_id: short(client_id), sub: short(sub), iss: short(iss) };
  } catch {
    return { client_id: '(not a JWT)' };
  }
}

export class SaeAuthenticator {
  readonly #mode: SaeAuthMode;
  readonly #tokens: TokenVerifier | undefined;

  constructor(mode: SaeAuthMode, tokens?: TokenVerifier) {
    if (mode !== 'certificate' && !tokens) throw new TypeError(`auth mode ${mode} needs an OIDC issuer`);
    this.#mode = mode;
    this.#tokens = tokens;
  }

  get mode(): SaeAuthMode {
    return this.#mode;
  }

  async identify(socket: TLSSocket, authorization: string | undefined): Promise<AuthResult> {
    const result = await this.#identify(socket, authorization);
    if (result.ok) return result;
    const bearer = /^Bearer (\S+)$/i.exec(authorization ?? '')?.[1];
    const certificate = presentedCertificate(socket);
    const token = tokenClaims(bearer);
    return { ...result, presented: { ...(certificate ? { certificate } : {}), ...(token ? { token } : {}) } };
  }

  async #identify(socket: TLSSocket, authorization: string | undefined): Promise<AuthResult> {
    const certSae = peerIdentity(socket, 'sae');
    // RFC 7235: the scheme is case-insensitive; the token is RFC 6750's b64token.
    const bearer = /^Bearer ([A-Za-z0-9._~+/=-]+)$/i.exec(authorization ?? '')?.[1];
    if (authorization !== undefined && bearer === undefined)
      return { ok: false, reason: 'malformed Authorization header' };

    if (this.#mode === 'certificate') {
      return certSae
        ? { ok: true, caller: { sae: certSae, scopes: [], via: 'certificate' } }
        : { ok: false, reason: 'no valid SAE client certificate' };
    }
    let token: { sae: string; scopes: readonly string[] } | undefined;
    if (bearer) {
      try {
        token = await this.#tokens!.verify(bearer);
      } catch (err) {
        // A token that is present must be good, whatever else the caller shows.
        return {
          ok: false,
          reason: `token refused: ${err instanceof TokenRefused ? err.message : 'verification failed'}`,
        };
      }
    }
    switch (this.#mode) {
      case 'token':
        return token ? { ok: true, caller: { ...token, via: 'token' } } : { ok: false, reason: 'no bearer token' };
      case 'either':
        if (token) return { ok: true, caller: { ...token, via: 'token' } };
        return certSae
          ? { ok: true, caller: { sae: certSae, scopes: [], via: 'certificate' } }
          : { ok: false, reason: 'neither a valid certificate nor a token' };
      case 'both':
        if (!certSae || !token) return { ok: false, reason: 'a valid certificate and a token are both required' };
        if (certSae !== token.sae)
          return { ok: false, reason: `certificate names ${certSae}, token names ${token.sae}` };
        return { ok: true, caller: { ...token, via: 'both' } };
    }
  }
}
