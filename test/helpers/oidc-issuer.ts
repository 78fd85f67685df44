import { exportJWK, generateKeyPair, importJWK, SignJWT } from 'jose';
import { createPublicKey } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import Provider from 'oidc-provider';
import { freePorts } from '../../src/cli/ports.js';

export const ADMIN_SCOPE = 'qks:admin';

export interface IssuerClient {
  /** The client ID, which is the SAE ID; its secret is `secret-<ID>`. */
  readonly id: string;
  /** Scopes the client may ask for (e.g. `qks:admin`); none by default. */
  readonly scope?: string;
  /** Lifetime of this client's access tokens (default: the issuer's). */
  readonly ttlSeconds?: number;
}

export interface IssuerOptions {
  /** The audience of the access tokens: the KMEs as one resource server. */
  readonly audience: string;
  readonly clients: readonly IssuerClient[];
  readonly port?: number;
  readonly tokenTtlSeconds?: number;
  /** Also publish an ES384 key (kid `k-es384`), for tokens signed with another allowed algorithm. */
  readonly publishEs384?: boolean;
}

export interface RunningIssuer {
  readonly issuer: string;
  readonly port: number;
  /** Key IDs the issuer publishes, newest (the signing key) first. */
  readonly kids: readonly string[];
  /** Restarts the issuer on the same port with a new signing key (the old one still published). */
  rotateKeys(): Promise<void>;
  /** Signs claims with the issuer's current key: for tokens the provider would never issue. */
  sign(claims: Record<string, unknown>, header?: Record<string, unknown>): Promise<string>;
  /** Signs claims with the published ES384 key (publishEs384). */
  signEs384(claims: Record<string, unknown>): Promise<string>;
  /** The issuer's current public key as JWK and as PEM (for the HMAC-with-public-key forgery). */
  publicJwk(): Record<string, unknown>;
  publicPem(): string;
  stop(): Promise<void>;
}

type Jwk = Awaited<ReturnType<typeof exportJWK>> & { kid: string; alg: string; use: string };

const newKey = async (kid: string, alg = 'ES256'): Promise<Jwk> => {
  const { privateKey } = await generateKeyPair(alg, { extractable: true });
  return { ...(await exportJWK(privateKey)), kid, alg, use: 'sig' };
};

const publicOf = (jwk: Jwk): Record<string, unknown> => {
  const pub: Record<string, unknown> = { ...jwk };
  delete pub['d'];
  return pub;
};

/**
 * A real OpenID provider (oidc-provider, the stand-in for Keycloak) issuing RFC 9068 JWT access
 * tokens (ES256, `aud` = the KMEs, `client_id` = the SAE) by the client credentials grant, on
 * loopback over plain HTTP.
 */
export async function startIssuer(opts: IssuerOptions): Promise<RunningIssuer> {
  let keys: Jwk[] = [await newKey('k1')];
  const es384 = opts.publishEs384 ? await newKey('k-es384', 'ES384') : undefined;
  let server: Server | undefined;
  // The issuer URL names the port, so the port is chosen before the provider is made.
  const port = opts.port ?? (await freePorts(1))[0]!;
  const issuer = `http://127.0.0.1:${port}`;
  const ttlOf = new Map(opts.clients.map((c) => [c.id, c.ttlSeconds ?? opts.tokenTtlSeconds ?? 300]));
  const start = async () => {
    const provider = new Provider(issuer, {
      clients: opts.clients.map((c) => ({
        client_id: c.id,
        client_secret: `secret-${c.id}`,
        grant_types: ['client_credentials'],
        response_types: [],
        redirect_uris: [],
        token_endpoint_auth_method: 'client_secret_basic',
        id_token_signed_response_alg: 'ES256',
        // A client may ask only for its listed scopes (oidc-provider needs a non-empty list).
        scope: c.scope ?? 'openid',
      })),
      jwks: { keys: es384 ? [...keys, es384] : keys },
      scopes: [ADMIN_SCOPE],
      features: {
        devInteractions: { enabled: false },
        clientCredentials: { enabled: true },
        resourceIndicators: {
          enabled: true,
          defaultResource: () => opts.audience,
          useGrantedResource: () => true,
          getResourceServerInfo: (_ctx: unknown, _resource: string, client: { clientId: string }) => ({
            scope: ADMIN_SCOPE,
            audience: opts.audience,
            accessTokenFormat: 'jwt',
            accessTokenTTL: ttlOf.get(client.clientId) ?? 300,
            jwt: { sign: { alg: 'ES256' } },
          }),
        },
      },
    });
    server = createServer(provider.callback());
    await new Promise<void>((resolve) => server!.listen(port, '127.0.0.1', resolve));
  };
  await start();
  const stop = () =>
    new Promise<void>((resolve) => {
      if (!server) return resolve();
      server.closeAllConnections();
      server.close(() => resolve());
    });
  return {
    issuer,
    port,
    get kids() {
      return keys.map((k) => k.kid);
    },
    rotateKeys: async () => {
      keys = [await newKey(`k${keys.length + 1}`), ...keys];
      await stop();
      await start();
    },
    stop,
    sign: async (claims, header = {}) => {
      const key = await importJWK(keys[0]!, 'ES256');
      return new SignJWT(claims)
        .setProtectedHeader({ alg: 'ES256', typ: 'at+jwt', kid: keys[0]!.kid, ...header })
        .sign(key);
    },
    signEs384: async (claims) => {
      if (!es384) throw new Error('start the issuer with publishEs384');
      return new SignJWT(claims)
        .setProtectedHeader({ alg: 'ES384', typ: 'at+jwt', kid: es384.kid })
        .sign(await importJWK(es384, 'ES384'));
    },
    publicJwk: () => publicOf(keys[0]!),
    publicPem: () =>
      createPublicKey({ key: publicOf(keys[0]!) as never, format: 'jwk' })
        .export({ type: 'spki', format: 'pem' })
        .toString(),
  };
}
