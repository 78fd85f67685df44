import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { DEFAULT_ALGORITHMS, TokenRefused, TokenVerifier } from '../../src/auth/token-verifier.js';
import { startIssuer, type RunningIssuer } from '../helpers/oidc-issuer.js';
import { TestClient } from '../helpers/sae-client.js';
import { startSites } from '../helpers/two-kmes.js';

const AUDIENCE = 'urn:qks:kmes';
const now = () => Math.floor(Date.now() / 1000);

/** Pinned algorithms, against the real provider publishing an ES256 and an ES384 key. */
describe('token signature algorithms are pinned', () => {
  let issuer: RunningIssuer;
  const claims = () => ({ client_id: 'sae-a1', iss: issuer.issuer, aud: AUDIENCE, iat: now(), exp: now() + 300 });
  before(async () => {
    issuer = await startIssuer({ audience: AUDIENCE, clients: [{ id: 'sae-a1' }], publishEs384: true });
  });
  after(() => issuer.stop());

  it('takes an ES384 token by default (ES384 is allowed unless pinned), from the published key', async () => {
    assert.ok(DEFAULT_ALGORITHMS.includes('ES384'));
    const verifier = new TokenVerifier({ issuer: issuer.issuer, allowLoopbackHttp: true, audience: AUDIENCE });
    assert.equal((await verifier.verify(await issuer.signEs384(claims()))).sae, 'sae-a1');
  });

  it('refuses an algorithm allowed by default but not configured, and takes the configured one', async () => {
    const verifier = new TokenVerifier({
      issuer: issuer.issuer,
      allowLoopbackHttp: true,
      audience: AUDIENCE,
      algorithms: ['ES256'],
    });
    await assert.rejects(verifier.verify(await issuer.signEs384(claims())), (err: Error) => {
      assert.ok(err instanceof TokenRefused);
      assert.match(err.message, /ERR_JOSE_ALG_NOT_ALLOWED/);
      return true;
    });
    assert.equal((await verifier.verify(await issuer.sign(claims()))).sae, 'sae-a1');
    const es384Only = new TokenVerifier({
      issuer: issuer.issuer,
      allowLoopbackHttp: true,
      audience: AUDIENCE,
      algorithms: ['ES384'],
    });
    await assert.rejects(es384Only.verify(await issuer.sign(claims())), /ERR_JOSE_ALG_NOT_ALLOWED/);
  });

  it('a KME configured with algorithms ["ES256"] refuses an ES384 token of the same issuer', async () => {
    const sites = await startSites({
      auth: {
        mode: 'token',
        oidc: { issuer: issuer.issuer, audience: AUDIENCE, algorithms: ['ES256'], allow_loopback_http: true },
      },
    });
    const config = sites.deployment.configs[0]!.config;
    const bare = new TestClient(`https://127.0.0.1:${config.sae_api.port}`, { ca: sites.deployment.ca });
    const status = async (token: string) =>
      (await bare.call('GET', '/api/v1/keys/sae-b1/status', undefined, { authorization: `Bearer ${token}` })).status;
    try {
      assert.equal(await status(await issuer.sign(claims())), 200, 'ES256, as configured');
      assert.equal(await status(await issuer.signEs384(claims())), 401, 'ES384: allowed by default, not configured');
    } finally {
      await bare.close();
      await sites.stop();
    }
  });

  it('refuses to be configured with none or HMAC', () => {
    for (const alg of ['none', 'HS256', 'HS512'])
      assert.throws(
        () =>
          new TokenVerifier({ issuer: issuer.issuer, allowLoopbackHttp: true, audience: AUDIENCE, algorithms: [alg] }),
        /asymmetric/,
      );
  });
});
