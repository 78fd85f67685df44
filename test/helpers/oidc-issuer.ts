import { exportJWK, generateKeyPair, importJWK, SignJWT } from 'jose';
import { createServer, type Server } from 'node:http';
import Provider from 'oidc-provider';
import { freePorts } from '../../src/cli/ports.js';

export interface IssuerOptions {
  /** The audience of the access tokens: the KMEs as one resource server. */
  readonly audience: string;
  /** SAE IDs that get a client (client secret = `secret-<ID>`), with optional extra scope. */
  readonly clients: ReadonlyArray<{ id: string; scope?: string }>;
  readonly port?: number;
  readonly tokenTtlSeconds?: number;
}

export interface RunningIssuer {
  readonly issuer: string;
  readonly port: number;
  /** Restarts the issuer on the same port with a new signing key (the old one still published). */
  rotateKeys(): Promise<void>;
  /** Signs claims with the issuer's current key: for tokens the provider would never issue. */
  sign(claims: Record<string, unknown>, header?: Record<string, unknown>): Promise<string>;
  /** The issuer's current public key (JWK). */
  publicJwk(): Record<string, unknown>;
  stop(): Promise<void>;
}

type Jwk = Awaited<ReturnType<typeof exportJWK>> & { kid: string; alg: string; use: string };

const newKey = async (kid: string): Promise<Jwk> => {
  const { privateKey } = await generateKeyPair('ES256', { extractable: true });
  return { ...(await exportJWK(privateKey)), kid, alg: 'ES256', use: 'sig' };
};

/**
 * A real OpenID provider (oidc-provider, the stand-in for Keycloak) issuing JWT access tokens to
 * SAEs by the client credentials grant, on loopback over plain HTTP.
 */
export async function startIssuer(opts: IssuerOptions): Promise<RunningIssuer> {
  let keys: Jwk[] = [await newKey('k1')];
  let server: Server | undefined;
  // The issuer URL names the port, so the port is chosen before the provider is made.
  const port = opts.port ?? (await freePorts(1))[0]!;
  const start = async () => {
    const issuer = `http://127.0.0.1:${port}`;
    const provider = new Provider(issuer, {
      clients: opts.clients.map((c) => ({
        client_id: c.id,
        client_secret: `secret-${c.id}`,
        grant_types: ['client_credentials'],
        response_types: [],
        redirect_uris: [],
        token_endpoint_auth_method: 'client_secret_basic',
        id_token_signed_response_alg: 'ES256',
        ...(c.scope ? { scope: c.scope } : {}),
      })),
      jwks: { keys },
      scopes: ['qks:admin'],
      features: {
        devInteractions: { enabled: false },
        clientCredentials: { enabled: true },
        resourceIndicators: {
          enabled: true,
          defaultResource: () => opts.audience,
          useGrantedResource: () => true,
          getResourceServerInfo: () => ({
            scope: 'qks:admin',
            audience: opts.audience,
            accessTokenFormat: 'jwt',
            accessTokenTTL: opts.tokenTtlSeconds ?? 300,
            jwt: { sign: { alg: 'ES256' } },
          }),
        },
      },
    });
    server = createServer(provider.callback());
    await new Promise<void>((resolve) => server!.listen(port, '127.0.0.1', resolve));
  };
  await start();
  const stop = () => new Promise<void>((resolve) => (server ? server.close(() => resolve()) : resolve()));
  return {
    get issuer() {
      return `http://127.0.0.1:${port}`;
    },
    get port() {
      return port;
    },
    rotateKeys: async () => {
      keys = [await newKey(`k${keys.length + 1}`), ...keys];
      server?.closeAllConnections();
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
    publicJwk: () => {
      const pub: Record<string, unknown> = { ...keys[0]! };
      delete pub['d'];
      return pub;
    },
  };
}
