import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { exportJWK, generateKeyPair, SignJWT } from 'jose';
import { TokenRefused, TokenVerifier } from '../../src/auth/token-verifier.js';
import { eventually } from '../helpers/two-kmes.js';

const AUDIENCE = 'qks-kme';

/**
 * The issuer's side of token checks, with an issuer that fails: bearer strings from anyone must not
 * turn into requests to the issuer, and keys only ever come over HTTPS (HTTP on loopback where a
 * test allows it).
 */
describe('OIDC discovery: back-off, one fetch at a time, https only', () => {
  let server: Server;
  let issuer: string;
  const requests: string[] = [];
  /** What the issuer does: fail, serve a document naming an insecure jwks_uri, or work. */
  let mode: 'failing' | 'insecure-jwks' | 'jwks-failing' | 'working' = 'failing';
  let signer: Awaited<ReturnType<typeof generateKeyPair>>;
  let jwk: Record<string, unknown>;

  before(async () => {
    signer = await generateKeyPair('ES256');
    jwk = { ...(await exportJWK(signer.publicKey)), kid: 'k1', alg: 'ES256', use: 'sig' };
    server = createServer((req, res) => {
      requests.push(req.url ?? '');
      if (mode === 'failing') return void res.writeHead(503).end();
      const json = (v: unknown) => res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(v));
      if (req.url === '/.well-known/openid-configuration') {
        const jwks = mode === 'insecure-jwks' ? 'http://192.0.2.1/jwks' : `${issuer}/jwks`;
        return json({ issuer, jwks_uri: jwks });
      }
      if (req.url === '/jwks') return mode === 'jwks-failing' ? void res.writeHead(503).end() : json({ keys: [jwk] });
      res.writeHead(404).end();
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    issuer = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  after(() => new Promise<void>((resolve) => server.close(() => resolve())));

  const token = (sae: string) =>
    new SignJWT({ client_id: sae })
      .setProtectedHeader({ alg: 'ES256', kid: 'k1' })
      .setIssuer(issuer)
      .setAudience(AUDIENCE)
      .setExpirationTime('5m')
      .sign(signer.privateKey);

  it('refuses an http issuer unless loopback http is allowed, and then only on loopback', () => {
    assert.throws(() => new TokenVerifier({ issuer, audience: AUDIENCE }), /must be https/);
    assert.throws(
      () => new TokenVerifier({ issuer: 'http://idp.example', audience: AUDIENCE, allowLoopbackHttp: true }),
      /must be https/,
    );
    new TokenVerifier({ issuer: 'https://idp.example', audience: AUDIENCE });
  });

  it('while discovery fails: one request per back-off, however many tokens arrive, then recovers', async () => {
    const verifier = new TokenVerifier({ issuer, audience: AUDIENCE, allowLoopbackHttp: true, discoveryRetryMs: 300 });
    requests.length = 0;
    mode = 'failing';
    // Fifty distinct tokens at once, and strings that are no token at all.
    const tokens = await Promise.all(Array.from({ length: 50 }, (_, i) => token(`sae-x${i}`)));
    const outcomes = await Promise.allSettled([
      ...tokens.map((t) => verifier.verify(t)),
      ...['garbage', 'a.b.c', 'eyJhbGciOiJub25lIn0.e30.'].map((t) => verifier.verify(t)),
    ]);
    assert.ok(outcomes.every((o) => o.status === 'rejected' && o.reason instanceof TokenRefused));
    assert.deepEqual(requests, ['/.well-known/openid-configuration'], 'one discovery for all of them');
    // More tokens during the back-off ask the issuer nothing.
    for (const t of tokens.slice(0, 10)) await assert.rejects(verifier.verify(t), /next try in/);
    assert.equal(requests.length, 1);
    // The issuer comes back: after the back-off the next token finds it, and is taken.
    mode = 'working';
    await eventually(
      () =>
        verifier.verify(tokens[0]!).then(
          (id) => id.sae === 'sae-x0',
          () => false,
        ),
      10_000,
      'a token taken once the issuer works',
    );
    assert.deepEqual(requests.slice(1), ['/.well-known/openid-configuration', '/jwks']);
  });

  it('while the key set fails: one request per back-off, however many tokens arrive, then recovers', async () => {
    const verifier = new TokenVerifier({ issuer, audience: AUDIENCE, allowLoopbackHttp: true, discoveryRetryMs: 300 });
    requests.length = 0;
    mode = 'jwks-failing';
    const tokens = await Promise.all(Array.from({ length: 20 }, (_, i) => token(`sae-y${i}`)));
    for (const t of tokens) await assert.rejects(verifier.verify(t), TokenRefused);
    assert.deepEqual(requests, ['/.well-known/openid-configuration', '/jwks'], 'one fetch of the key set for all');
    mode = 'working';
    await eventually(
      () =>
        verifier.verify(tokens[0]!).then(
          (id) => id.sae === 'sae-y0',
          () => false,
        ),
      10_000,
      'a token taken once the key set is back',
    );
    assert.deepEqual(requests.slice(2), ['/jwks']);
  });

  it('refuses keys from a jwks_uri that is not https, and never fetches it', async () => {
    const verifier = new TokenVerifier({ issuer, audience: AUDIENCE, allowLoopbackHttp: true });
    requests.length = 0;
    mode = 'insecure-jwks';
    await assert.rejects(verifier.verify(await token('sae-a1')), /jwks_uri http:\/\/192\.0\.2\.1\/jwks must be https/);
    assert.deepEqual(requests, ['/.well-known/openid-configuration']);
  });
});
