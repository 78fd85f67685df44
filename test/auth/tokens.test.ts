import assert from 'node:assert/strict';
import { createHmac } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { generateKeyPair, SignJWT } from 'jose';
import { KmeClient } from '../../src/sae/kme-client.js';
import { TokenClient } from '../../src/sae/token-client.js';
import { startIssuer, type RunningIssuer } from '../helpers/oidc-issuer.js';
import { TestClient } from '../helpers/sae-client.js';
import { eventually, startSites, type TwoSites } from '../helpers/two-kmes.js';

const AUDIENCE = 'urn:qks:kmes';
const b64 = (v: unknown) => Buffer.from(JSON.stringify(v)).toString('base64url');

describe('OAuth2 bearer tokens from a real OIDC provider', () => {
  let issuer: RunningIssuer;
  let sites: TwoSites;
  const anonymous: Record<string, TestClient> = {};
  /** A client with no certificate, at the given KME: only its token can identify it. */
  const tokenOnly = (kme: string) => {
    const cfg = sites.deployment.configs.find((c) => c.kme === kme)!.config;
    return (anonymous[kme] ??= new TestClient(`https://127.0.0.1:${cfg.sae_api.port}`, { ca: sites.deployment.ca }));
  };
  const call = (kme: string, path: string, token: string, body?: unknown) =>
    tokenOnly(kme).call(body === undefined ? 'GET' : 'POST', path, body, { authorization: `Bearer ${token}` });
  const claims = (sae: string, over: Record<string, unknown> = {}) => ({
    client_id: sae,
    sub: sae,
    iss: issuer.issuer,
    aud: AUDIENCE,
    iat: Math.floor(Date.now() / 1000),
    exp: Math.floor(Date.now() / 1000) + 300,
    ...over,
  });
  const tokenClient = (sae: string) =>
    new TokenClient({ issuer: issuer.issuer, clientId: sae, clientSecret: `secret-${sae}` });

  before(async () => {
    issuer = await startIssuer({
      audience: AUDIENCE,
      clients: ['sae-a1', 'sae-a2', 'sae-b1', 'sae-b2'].map((id) => ({ id })),
    });
    sites = await startSites({ auth: { mode: 'token', oidc: { issuer: issuer.issuer, audience: AUDIENCE } } });
    const token = await issuer.sign(claims('sae-a1'));
    await eventually(
      async () =>
        ((await call('kme-a', '/api/v1/keys/sae-b1/status', token)).body as { stored_key_count: number })
          .stored_key_count > 20,
      10_000,
    );
  });
  after(async () => {
    await Promise.all(Object.values(anonymous).map((c) => c.close()));
    await sites.stop();
    await issuer.stop();
  });

  it('a valid token works across both sites, fetched once and reused', async () => {
    const tokensA = tokenClient('sae-a1');
    const tokensB = tokenClient('sae-b1');
    const url = (kme: string) =>
      `https://127.0.0.1:${sites.deployment.configs.find((c) => c.kme === kme)!.config.sae_api.port}`;
    const a1 = new KmeClient({ url: url('kme-a'), ca: sites.deployment.ca, authHeaders: tokensA.headers });
    const b1 = new KmeClient({ url: url('kme-b'), ca: sites.deployment.ca, authHeaders: tokensB.headers });
    try {
      for (let i = 0; i < 5; i++) {
        const got = await a1.getKeys('sae-b1', { number: 2 });
        const fetched = await b1.getKeysWithIds(
          'sae-a1',
          got.keys.map((k) => k.key_ID),
        );
        assert.deepEqual(fetched.keys, got.keys);
      }
      assert.equal(tokensA.fetched, 1, 'one token for many requests');
      assert.equal(tokensB.fetched, 1);
    } finally {
      await Promise.all([a1.close(), b1.close(), tokensA.close(), tokensB.close()]);
    }
  });

  it('refuses forged, stale and misdirected tokens with 401 and no body', async () => {
    const now = Math.floor(Date.now() / 1000);
    const stranger = await generateKeyPair('ES256');
    const valid = await issuer.sign(claims('sae-a1'));
    const [h, p, s] = valid.split('.');
    const forged: Record<string, string> = {
      expired: await issuer.sign(claims('sae-a1', { iat: now - 600, exp: now - 300 })),
      'not yet valid': await issuer.sign(claims('sae-a1', { nbf: now + 300 })),
      'wrong issuer': await issuer.sign(claims('sae-a1', { iss: 'http://127.0.0.1:1' })),
      'wrong audience': await issuer.sign(claims('sae-a1', { aud: 'urn:other' })),
      'alg none': `${b64({ alg: 'none', typ: 'at+jwt' })}.${p}.`,
      'HMAC with the public key': (() => {
        const header = b64({ alg: 'HS256', typ: 'at+jwt', kid: (issuer.publicJwk() as { kid: string }).kid });
        const mac = createHmac('sha256', JSON.stringify(issuer.publicJwk()))
          .update(`${header}.${p}`)
          .digest('base64url');
        return `${header}.${p}.${mac}`;
      })(),
      'tampered signature': `${h}.${p}.${s!.slice(0, -4)}${s!.slice(-4) === 'AAAA' ? 'BBBB' : 'AAAA'}`,
      'tampered claims': `${h}.${b64({ ...claims('sae-a2') })}.${s}`,
      'unknown key': await new SignJWT(claims('sae-a1'))
        .setProtectedHeader({ alg: 'ES256', kid: 'stranger' })
        .sign(stranger.privateKey),
      'no client_id': await issuer.sign(claims('sae-a1', { client_id: undefined })),
    };
    for (const [what, token] of Object.entries(forged)) {
      const res = await call('kme-a', '/api/v1/keys/sae-b1/status', token);
      assert.equal(res.status, 401, what);
      assert.equal(res.text, '', what);
    }
    const malformed = await tokenOnly('kme-a').call('GET', '/api/v1/keys/sae-b1/status', undefined, {
      authorization: 'Basic abc',
    });
    assert.equal(malformed.status, 401);
    assert.equal((await call('kme-a', '/api/v1/keys/sae-b1/status', valid)).status, 200, 'the untouched token works');
  });

  it('a token of one SAE does not open another SAE’s keys', async () => {
    const a1 = await issuer.sign(claims('sae-a1'));
    const got = await call('kme-a', '/api/v1/keys/sae-b1/enc_keys', a1, { number: 1 });
    assert.equal(got.status, 200);
    const ids = { key_IDs: (got.body as { keys: Array<{ key_ID: string }> }).keys.map((k) => ({ key_ID: k.key_ID })) };
    const asB2 = await call('kme-b', '/api/v1/keys/sae-a1/dec_keys', await issuer.sign(claims('sae-b2')), ids);
    assert.equal(asB2.status, 401);
    const asB1 = await call('kme-b', '/api/v1/keys/sae-a1/dec_keys', await issuer.sign(claims('sae-b1')), ids);
    assert.equal(asB1.status, 200, 'the key stayed for its slave');
  });

  it('picks up a rotated signing key without a restart', async () => {
    await issuer.rotateKeys();
    const fresh = tokenClient('sae-a1');
    try {
      const token = await fresh.token();
      // The KME refetches the key set for an unknown key ID, at most every 5 seconds.
      await eventually(
        async () => (await call('kme-a', '/api/v1/keys/sae-b1/status', token)).status === 200,
        8000,
        'the new key',
      );
    } finally {
      await fresh.close();
    }
  });
});

describe('certificate and token together', () => {
  let issuer: RunningIssuer;
  let sites: TwoSites;
  before(async () => {
    issuer = await startIssuer({ audience: AUDIENCE, clients: [{ id: 'sae-a1' }, { id: 'sae-a2' }] });
    sites = await startSites({ auth: { mode: 'both', oidc: { issuer: issuer.issuer, audience: AUDIENCE } } });
  });
  after(async () => {
    await sites.stop();
    await issuer.stop();
  });

  it('needs both, naming the same SAE', async () => {
    const a1 = sites.sae('sae-a1');
    const token = (sae: string) =>
      new TokenClient({ issuer: issuer.issuer, clientId: sae, clientSecret: `secret-${sae}` }).token();
    const path = '/api/v1/keys/sae-b1/status';
    assert.equal((await a1.get(path)).status, 401, 'certificate alone');
    assert.equal(
      (await a1.call('GET', path, undefined, { authorization: `Bearer ${await token('sae-a2')}` })).status,
      401,
      'another SAE’s token',
    );
    assert.equal(
      (await a1.call('GET', path, undefined, { authorization: `Bearer ${await token('sae-a1')}` })).status,
      200,
    );
  });
});
