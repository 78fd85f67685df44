import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { DEFAULT_ALGORITHMS, TokenRefused, TokenVerifier } from '../../src/auth/token-verifier.js';
import { startIssuer, type RunningIssuer } from '../helpers/oidc-issuer.js';

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
    const verifier = new TokenVerifier({ issuer: issuer.issuer, audience: AUDIENCE });
    assert.equal((await verifier.verify(await issuer.signEs384(claims()))).sae, 'sae-a1');
  });

  it('refuses an algorithm allowed by default but not configured, and takes the configured one', async () => {
    const verifier = new TokenVerifier({ issuer: issuer.issuer, audience: AUDIENCE, algorithms: ['ES256'] });
    await assert.rejects(verifier.verify(await issuer.signEs384(claims())), (err: Error) => {
      assert.ok(err instanceof TokenRefused);
      assert.match(err.message, /ERR_JOSE_ALG_NOT_ALLOWED/);
      return true;
    });
    assert.equal((await verifier.verify(await issuer.sign(claims()))).sae, 'sae-a1');
    const es384Only = new TokenVerifier({ issuer: issuer.issuer, audience: AUDIENCE, algorithms: ['ES384'] });
    await assert.rejects(es384Only.verify(await issuer.sign(claims())), /ERR_JOSE_ALG_NOT_ALLOWED/);
  });

  it('refuses to be configured with none or HMAC', () => {
    for (const alg of ['none', 'HS256', 'HS512'])
      assert.throws(
        () => new TokenVerifier({ issuer: issuer.issuer, audience: AUDIENCE, algorithms: [alg] }),
        /asymmetric/,
      );
  });
});
