import assert from 'node:assert/strict';
import { createHmac } from 'node:crypto';
import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { decodeProtectedHeader, exportJWK, generateKeyPair, SignJWT } from 'jose';
import { KmeClient } from '../../src/sae/kme-client.js';
import { TokenClient } from '../../src/sae/token-client.js';
import { startIssuer, type RunningIssuer } from '../helpers/oidc-issuer.js';
import { TestClient, type HttpResult } from '../helpers/sae-client.js';
import { UNAUTHORIZED_TEXT } from '../api/etsi-helpers.js';
import { eventually, startSites, type SiteOptions, type TwoSites } from '../helpers/two-kmes.js';

const AUDIENCE = 'urn:qks:kmes';
const SAES = ['sae-a1', 'sae-a2', 'sae-b1', 'sae-b2'];
const STATUS = '/api/v1/keys/sae-b1/status';
const b64 = (v: unknown) => Buffer.from(JSON.stringify(v)).toString('base64url');
const now = () => Math.floor(Date.now() / 1000);
/** Status and whether the body is the fixed refusal only: a failing assertion must not print keys. */
const outcome = (res: HttpResult) => [
  res.status,
  res.text === UNAUTHORIZED_TEXT ? 'unauthorized' : `${res.text.length} bytes`,
];
const REFUSED = [401, 'unauthorized'];

/** An issuer and two KMEs that trust it, with clients made at either site (with or without a certificate). */
function setup(mode: 'token' | 'both' | 'either', issuerOpts: { shortLived?: string } = {}) {
  const ctx = {} as { issuer: RunningIssuer; sites: TwoSites; tokens: string[] };
  const extra: TestClient[] = [];
  before(async () => {
    ctx.issuer = await startIssuer({
      audience: AUDIENCE,
      clients: SAES.map((id) => ({ id, ...(id === issuerOpts.shortLived ? { ttlSeconds: 4 } : {}) })),
    });
    const auth: SiteOptions['auth'] = {
      mode,
      oidc: { issuer: ctx.issuer.issuer, audience: AUDIENCE, sae_claim: 'client_id', allow_loopback_http: true },
    };
    ctx.sites = await startSites({ auth });
    ctx.tokens = [];
  });
  after(async () => {
    await Promise.all(extra.map((c) => c.close()));
    await ctx.sites.stop();
    await ctx.issuer.stop();
  });
  const url = (kme: string) =>
    `https://127.0.0.1:${ctx.sites.deployment.configs.find((c) => c.kme === kme)!.config.sae_api.port}`;
  /** A client with no certificate: only its token can identify it. */
  const bare = (kme: string) => {
    const c = new TestClient(url(kme), { ca: ctx.sites.deployment.ca });
    extra.push(c);
    return c;
  };
  /** Claims as the issuer would put them in an access token for `sae`. */
  const claims = (sae: string, over: Record<string, unknown> = {}) => ({
    client_id: sae,
    sub: sae,
    iss: ctx.issuer.issuer,
    aud: AUDIENCE,
    iat: now(),
    exp: now() + 300,
    ...over,
  });
  /** A real token from the provider by the client credentials grant, remembered for the log check. */
  const fetchToken = async (sae: string, issuer = ctx.issuer) => {
    const client = new TokenClient({ issuer: issuer.issuer, clientId: sae, clientSecret: `secret-${sae}` });
    const token = await client.token();
    await client.close();
    ctx.tokens.push(token);
    return token;
  };
  const bearer = (token: string) => ({ authorization: `Bearer ${token}` });
  /** No token may ever reach the KMEs' logs. */
  const logsHoldNoToken = () => {
    for (const kme of ['kme-a', 'kme-b']) {
      const log = readFileSync(join(ctx.sites.deployment.dir, `${kme}.log`), 'utf8');
      for (const token of ctx.tokens) assert.ok(!log.includes(token.split('.')[2]!), `a token in ${kme}.log`);
    }
  };
  return { ctx, url, bare, claims, fetchToken, bearer, logsHoldNoToken };
}

describe('mode token: bearer tokens from a real OIDC provider', () => {
  const { ctx, url, bare, claims, fetchToken, bearer, logsHoldNoToken } = setup('token', { shortLived: 'sae-a2' });
  let a: TestClient;
  const status = async (token: string) => (await a.call('GET', STATUS, undefined, bearer(token))).status;

  before(async () => {
    a = bare('kme-a');
    const token = await fetchToken('sae-a1');
    await eventually(
      async () =>
        ((await a.call('GET', STATUS, undefined, bearer(token))).body as { stored_key_count?: number })
          .stored_key_count! > 20,
      10_000,
      'keys',
    );
  });

  it('works across both sites with one token per SAE, fetched once and reused', async () => {
    const [ta, tb] = ['sae-a1', 'sae-b1'].map(
      (id) => new TokenClient({ issuer: ctx.issuer.issuer, clientId: id, clientSecret: `secret-${id}` }),
    ) as [TokenClient, TokenClient];
    const a1 = new KmeClient({ url: url('kme-a'), ca: ctx.sites.deployment.ca, authHeaders: ta.headers });
    const b1 = new KmeClient({ url: url('kme-b'), ca: ctx.sites.deployment.ca, authHeaders: tb.headers });
    try {
      // Concurrent first requests share one token request.
      const statuses = await Promise.all([1, 2, 3].map(() => a1.status('sae-b1')));
      assert.ok(statuses.every((s) => s.master_SAE_ID === 'sae-a1' && s.slave_SAE_ID === 'sae-b1'));
      for (let i = 0; i < 5; i++) {
        const got = await a1.getKeys('sae-b1', { number: 2 });
        const fetched = await b1.getKeysWithIds(
          'sae-a1',
          got.keys.map((k) => k.key_ID),
        );
        assert.ok(JSON.stringify(fetched.keys) === JSON.stringify(got.keys), 'the slave gets the master’s keys');
      }
      assert.equal(ta.fetched, 1, 'one token for eight requests');
      assert.equal(tb.fetched, 1);
      ctx.tokens.push(await ta.token(), await tb.token());
    } finally {
      await Promise.all([a1.close(), b1.close(), ta.close(), tb.close()]);
    }
  });

  it('TokenClient refreshes its token shortly before it expires', async () => {
    // sae-a2's tokens live 4 s; refreshed 2.5 s before expiry, one is reused for about 1.5 s.
    const tokens = new TokenClient({
      issuer: ctx.issuer.issuer,
      clientId: 'sae-a2',
      clientSecret: 'secret-sae-a2',
      refreshBeforeMs: 2500,
    });
    const a2 = new KmeClient({ url: url('kme-a'), ca: ctx.sites.deployment.ca, authHeaders: tokens.headers });
    try {
      const first = await tokens.token();
      await a2.status('sae-b1');
      await a2.status('sae-b2');
      assert.equal(tokens.fetched, 1);
      await new Promise((r) => setTimeout(r, 1700));
      await a2.status('sae-b1');
      assert.equal(tokens.fetched, 2, 'a new token near expiry');
      const second = await tokens.token();
      assert.notEqual(second, first);
      ctx.tokens.push(first, second);
    } finally {
      await Promise.all([a2.close(), tokens.close()]);
    }
  });

  it('refuses forged, stale and misdirected tokens with 401 unauthorized', async () => {
    const valid = await fetchToken('sae-a1');
    const [h, p, s] = valid.split('.') as [string, string, string];
    const stranger = await generateKeyPair('ES256', { extractable: true });
    const strangerJwk = await exportJWK(stranger.publicKey);
    const ownKey = (c: Record<string, unknown>, header: Record<string, unknown>) =>
      new SignJWT(c).setProtectedHeader({ alg: 'ES256', typ: 'at+jwt', ...header }).sign(stranger.privateKey);
    const hmac = (secret: string) => {
      const header = b64({ alg: 'HS256', typ: 'at+jwt', kid: ctx.issuer.kids[0] });
      return `${header}.${p}.${createHmac('sha256', secret).update(`${header}.${p}`).digest('base64url')}`;
    };
    const flipped = s.slice(0, 10) + (s[10] === 'A' ? 'B' : 'A') + s.slice(11);
    const forged: Record<string, string> = {
      expired: await ctx.issuer.sign(claims('sae-a1', { iat: now() - 600, exp: now() - 300 })),
      'not yet valid': await ctx.issuer.sign(claims('sae-a1', { nbf: now() + 300 })),
      'wrong issuer': await ctx.issuer.sign(claims('sae-a1', { iss: 'http://127.0.0.1:1' })),
      'wrong audience': await ctx.issuer.sign(claims('sae-a1', { aud: 'urn:other' })),
      'no expiry': await ctx.issuer.sign(claims('sae-a1', { exp: undefined })),
      'no client_id': await ctx.issuer.sign(claims('sae-a1', { client_id: undefined })),
      'alg none': `${b64({ alg: 'none', typ: 'at+jwt' })}.${p}.`,
      'HS256 keyed with the issuer’s public key PEM': hmac(ctx.issuer.publicPem()),
      'HS256 keyed with the issuer’s public JWK': hmac(JSON.stringify(ctx.issuer.publicJwk())),
      'tampered signature': `${h}.${p}.${flipped}`,
      'tampered claims': `${h}.${b64({ ...claims('sae-a2') })}.${s}`,
      'unknown kid': await ownKey(claims('sae-a1'), { kid: 'stranger' }),
      'own key under the issuer’s kid': await ownKey(claims('sae-a1'), { kid: ctx.issuer.kids[0] }),
      'own key embedded in the header': await ownKey(claims('sae-a1'), { jwk: strangerJwk }),
      'an SAE of the other KME': await ctx.issuer.sign(claims('sae-b1')),
    };
    for (const [what, token] of Object.entries(forged)) {
      const res = await a.call('GET', STATUS, undefined, bearer(token));
      assert.deepEqual(outcome(res), REFUSED, what);
    }
    const malformed = ['Basic c2FlLWExOnNlY3JldA==', 'Bearer', `Bearer  ${valid}`, `Bearer ${valid} x`, valid];
    for (const [i, header] of malformed.entries()) {
      const res = await a.call('GET', STATUS, undefined, { authorization: header });
      assert.deepEqual(outcome(res), REFUSED, `malformed Authorization header #${i}`);
    }
    assert.deepEqual(outcome(await a.get(STATUS)), REFUSED, 'no token at all');
    // The log names who each refused token claimed to be (its claims, not the token).
    const log = readFileSync(join(ctx.sites.deployment.dir, 'kme-a.log'), 'utf8');
    const claimed = log
      .split('\n')
      .filter((l) => l.includes('refused: not authenticated'))
      .map((l) => (JSON.parse(l) as { presented?: { token?: { client_id?: string; iss?: string } } }).presented?.token);
    assert.ok(claimed.filter((t) => t?.client_id === 'sae-a1').length >= 10, 'forged tokens naming sae-a1');
    assert.ok(
      claimed.some((t) => t?.iss === 'http://127.0.0.1:1'),
      'the wrong issuer, as claimed',
    );
    for (const token of Object.values(forged)) assert.ok(!log.includes(token), 'never the token itself');
    assert.equal(await status(valid), 200, 'the untouched token works');
    // RFC 7235: the scheme is case-insensitive.
    assert.equal((await a.call('GET', STATUS, undefined, { authorization: `bearer ${valid}` })).status, 200);
  });

  it('qks sae --issuer fetches a token by client credentials and uses it', async () => {
    const run = (id: string, secret: string, ...args: string[]) =>
      new Promise<{ code: number; out: string; err: string }>((resolve) => {
        const sae = ctx.sites.deployment.saes.find((x) => x.id === id)!;
        const child = execFile(
          process.execPath,
          [join(process.cwd(), 'bin', 'qks.js'), 'sae', ...args, '--sae', id, '--kme', url(sae.kme)]
            .concat(['--ca', ctx.sites.deployment.ca, '--cert', sae.cert, '--key', sae.key])
            .concat(['--issuer', ctx.issuer.issuer]),
          { env: { ...process.env, QKS_CLIENT_SECRET: secret } },
          (e, out, err) => resolve({ code: e ? Number((e as { code?: number }).code ?? 1) : 0, out, err }),
        );
        child.stdin?.end();
      });
    // In mode token a certificate alone is refused: a 200 below came with the token.
    const sae = ctx.sites.deployment.saes.find((x) => x.id === 'sae-a1')!;
    const certOnly = new TestClient(url('kme-a'), { ca: ctx.sites.deployment.ca, cert: sae.cert, key: sae.key });
    assert.equal((await certOnly.get(STATUS)).status, 401);
    await certOnly.close();
    const status = await run('sae-a1', 'secret-sae-a1', 'status', '--slave', 'sae-b1');
    assert.equal(status.code, 0, status.err);
    assert.equal((JSON.parse(status.out) as { master_SAE_ID: string }).master_SAE_ID, 'sae-a1');
    const got = await run('sae-a1', 'secret-sae-a1', 'get-key', '--slave', 'sae-b1', '--number', '2');
    assert.equal(got.code, 0, got.err);
    assert.equal((JSON.parse(got.out) as { keys: unknown[] }).keys.length, 2);
    const wrong = await run('sae-a1', 'not-the-secret', 'status', '--slave', 'sae-b1');
    assert.notEqual(wrong.code, 0);
    assert.match(wrong.err, /token|client|401|invalid/i);
    assert.ok(!wrong.err.includes('not-the-secret'), 'the secret is not echoed');
  });

  it('refuses a token from another real issuer for the same client and audience', async () => {
    const other = await startIssuer({ audience: AUDIENCE, clients: [{ id: 'sae-a1' }] });
    try {
      assert.equal(await status(await fetchToken('sae-a1', other)), 401);
    } finally {
      await other.stop();
    }
  });

  it('a token of one SAE does not open the keys addressed to another', async () => {
    const got = await a.call('POST', '/api/v1/keys/sae-b1/enc_keys', { number: 1 }, bearer(await fetchToken('sae-a1')));
    assert.equal(got.status, 200);
    const ids = { key_IDs: (got.body as { keys: Array<{ key_ID: string }> }).keys.map((k) => ({ key_ID: k.key_ID })) };
    const b = bare('kme-b');
    const asB2 = await b.call('POST', '/api/v1/keys/sae-a1/dec_keys', ids, bearer(await fetchToken('sae-b2')));
    assert.deepEqual(outcome(asB2), REFUSED);
    const asB1 = await b.call('POST', '/api/v1/keys/sae-a1/dec_keys', ids, bearer(await fetchToken('sae-b1')));
    assert.equal(asB1.status, 200, 'the key stayed for its slave');
  });

  it('picks up the provider’s new signing key without a restart', async () => {
    const before = await fetchToken('sae-a1');
    await ctx.issuer.rotateKeys();
    const after = await fetchToken('sae-a1');
    assert.notEqual(decodeProtectedHeader(after).kid, decodeProtectedHeader(before).kid, 'signed by the new key');
    // The KME refetches the key set for an unknown key ID, at most every 5 seconds.
    await eventually(async () => (await status(after)) === 200, 8000, 'the new key');
    assert.equal(await status(before), 200, 'the old key is still published');
    logsHoldNoToken();
  });
});

describe('mode both: a certificate and a token naming the same SAE', () => {
  const { ctx, bare, fetchToken, bearer } = setup('both');

  it('refuses either alone, and a token of another SAE than the certificate', async () => {
    const [a1, a2] = [ctx.sites.sae('sae-a1'), ctx.sites.sae('sae-a2')];
    const t1 = await fetchToken('sae-a1');
    const t2 = await fetchToken('sae-a2');
    const refusals = [
      await a1.get(STATUS),
      await bare('kme-a').call('GET', STATUS, undefined, bearer(t1)),
      await a2.call('GET', STATUS, undefined, bearer(t1)),
      await a1.call('GET', STATUS, undefined, bearer(t2)),
    ];
    assert.deepEqual(
      refusals.map(outcome),
      refusals.map(() => REFUSED),
    );
    assert.equal((await a1.call('GET', STATUS, undefined, bearer(t1))).status, 200);
    assert.equal((await a2.call('GET', STATUS, undefined, bearer(t2))).status, 200);
  });
});

describe('mode either: a certificate or a token', () => {
  const { ctx, bare, claims, fetchToken, bearer } = setup('either');

  it('takes either, but a bad token spoils a good certificate', async () => {
    const a1 = ctx.sites.sae('sae-a1');
    const anonymous = bare('kme-a');
    assert.equal((await a1.get(STATUS)).status, 200, 'certificate alone');
    assert.equal((await anonymous.call('GET', STATUS, undefined, bearer(await fetchToken('sae-a1')))).status, 200);
    const expired = await ctx.issuer.sign(claims('sae-a1', { iat: now() - 600, exp: now() - 300 }));
    for (const res of [
      await anonymous.get(STATUS),
      await a1.call('GET', STATUS, undefined, bearer(expired)),
      await a1.call('GET', STATUS, undefined, { authorization: 'Basic eDp5' }),
    ]) {
      assert.deepEqual(outcome(res), REFUSED);
    }
  });
});
