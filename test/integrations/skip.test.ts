import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { get, type RequestOptions } from 'node:https';
import { after, before, describe, it } from 'node:test';
import { builtInTopology } from '../../src/domain/topology.js';
import { eventually, type TwoSites } from '../helpers/two-kmes.js';
import { skipSites, type Router } from '../helpers/skip-sites.js';

// A SKIP client written from draft-cisco-skip-02 (section 3: HTTPS over TLS 1.2/1.3 with a PSK;
// section 4: GET methods, JSON bodies, hexadecimal keyId and key), not from QKS's code.

interface Answer {
  readonly status: number;
  readonly body: Record<string, unknown>;
  readonly allow: string | undefined;
}

/** One GET over TLS 1.2 DHE-PSK-AES256-CBC-SHA384 (the draft's RECOMMENDED PSK suite). */
function skipGet(router: Router, path: string, method = 'GET'): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const req = get(
      {
        host: '127.0.0.1',
        port: router.port,
        path,
        method,
        agent: false,
        minVersion: 'TLSv1.2',
        maxVersion: 'TLSv1.2',
        ciphers: 'DHE-PSK-AES256-CBC-SHA384',
        pskCallback: () => ({ psk: router.psk, identity: router.identity }),
        checkServerIdentity: () => undefined,
      } as RequestOptions,
      (res) => {
        let text = '';
        res.setEncoding('utf8');
        res.on('data', (d: string) => (text += d));
        res.on('end', () =>
          resolve({
            status: res.statusCode ?? 0,
            body: JSON.parse(text) as Record<string, unknown>,
            allow: res.headers.allow,
          }),
        );
      },
    );
    req.on('error', reject);
  });
}

const run = (cmd: string, args: string[], input = '') =>
  new Promise<{ code: number; out: string }>((resolve) => {
    const child = execFile(cmd, args, { timeout: 10_000 }, (err, stdout, stderr) =>
      resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, out: stdout + stderr }),
    );
    child.stdin?.end(input);
  });

/** A new key for `remote`, once the link has material (the simulated source starts empty). */
async function newKey(router: Router, remote: string, size?: number): Promise<{ keyId: string; key: string }> {
  let answer: Answer | undefined;
  const query = `remoteSystemID=${remote}${size ? `&size=${size}` : ''}`;
  await eventually(async () => (answer = await skipGet(router, `/key?${query}`)).status === 200, 20_000, 'a SKIP key');
  return answer!.body as { keyId: string; key: string };
}

describe('SKIP key provider between two sites', () => {
  let sites: TwoSites;
  let router: (id: string) => Router;
  before(async () => {
    ({ sites, router } = await skipSites(
      {},
      { 'router-a': 'sae-a1', 'router-a2': 'sae-a2', 'router-b': 'sae-b1' },
      // sae-a2 may share keys with sae-a1 only.
      (config) => config.access.rules.push({ sae: 'sae-a2', slaves: ['sae-a1'] }),
    ));
  });
  after(() => sites?.stop());

  it('describes the caller as localSystemID and the other SAEs as remote systems', async () => {
    const { status, body } = await skipGet(router('router-a'), '/capabilities');
    assert.equal(status, 200);
    assert.equal(body['entropy'], true);
    assert.equal(body['key'], true);
    assert.equal(typeof body['algorithm'], 'string');
    assert.equal(body['localSystemID'], 'sae-a1');
    assert.ok((body['remoteSystemID'] as string[]).includes('sae-b1'));
    assert.ok(!(body['remoteSystemID'] as string[]).includes('sae-a1'));
  });

  it('gives the same key at both sites, once at the remote site', async () => {
    const a = await newKey(router('router-a'), 'sae-b1');
    assert.match(a.keyId, /^[0-9a-f]{32}$/);
    assert.match(a.key, /^[0-9a-f]{64}$/);
    const b = await skipGet(router('router-b'), `/key/${a.keyId}?remoteSystemID=sae-a1`);
    assert.equal(b.status, 200);
    assert.equal(b.body['keyId'], a.keyId);
    assert.ok(b.body['key'] === a.key, 'the two sites got different keys');
    const again = await skipGet(router('router-b'), `/key/${a.keyId}?remoteSystemID=sae-a1`);
    assert.equal(again.status, 400);
    assert.equal(again.body['key'], undefined);
  });

  it('gives a key of the requested size', async () => {
    const a = await newKey(router('router-a'), 'sae-b1', 128);
    assert.match(a.key, /^[0-9a-f]{32}$/);
    const b = await skipGet(router('router-b'), `/key/${a.keyId}?remoteSystemID=sae-a1`);
    assert.ok(b.body['key'] === a.key, 'the two sites got different keys');
  });

  it('refuses bad requests with the draft’s codes and changes nothing', async () => {
    const a = await newKey(router('router-a'), 'sae-b1');
    const rb = router('router-b');
    const refusals: Array<[string, number, string?]> = [
      ['/key', 400],
      ['/key?remoteSystemID=sae-zz', 400],
      ['/key?remoteSystemID=sae-b1', 400], // itself
      ['/key?remoteSystemID=sae-a1&size=abc', 400],
      ['/key?remoteSystemID=sae-a1&size=100', 400],
      ['/key?remoteSystemID=sae-a1&number=2', 400],
      [`/key/${a.keyId.slice(2)}?remoteSystemID=sae-a1`, 400],
      [`/key/${a.keyId}`, 400],
      // The right key ID from the wrong master: not found, and not consumed.
      [`/key/${a.keyId}?remoteSystemID=sae-a2`, 400],
      [`/key/${'0'.repeat(32)}?remoteSystemID=sae-a1`, 400],
      ['/entropy?minentropy=7', 400],
      ['/nothing', 404],
      ['/keys', 404],
      ['/key', 405, 'POST'],
      ['/capabilities', 405, 'DELETE'],
    ];
    for (const [path, code, method] of refusals) {
      const answer = await skipGet(rb, path, method);
      assert.equal(answer.status, code, `${method ?? 'GET'} ${path}`);
      assert.equal(typeof answer.body['message'], 'string');
      assert.equal(answer.body['key'], undefined);
      if (code === 405) assert.equal(answer.allow, 'GET');
    }
    const b = await skipGet(rb, `/key/${a.keyId}?remoteSystemID=sae-a1`);
    assert.equal(b.status, 200);
    assert.ok(b.body['key'] === a.key, 'the two sites got different keys');
  });

  it('refuses a key the access rules do not allow', async () => {
    const answer = await skipGet(router('router-a2'), '/key?remoteSystemID=sae-b1');
    assert.equal(answer.status, 400);
    assert.match(answer.body['message'] as string, /access rules/);
  });

  it('gives entropy of the default and the requested length', async () => {
    const d = await skipGet(router('router-a'), '/entropy');
    assert.equal(d.status, 200);
    assert.equal(d.body['minentropy'], 256);
    assert.match(d.body['randomStr'] as string, /^[0-9A-F]{64}$/);
    const s = await skipGet(router('router-a'), '/entropy?minentropy=128');
    assert.equal(s.body['minentropy'], 128);
    assert.match(s.body['randomStr'] as string, /^[0-9A-F]{32}$/);
  });

  it('refuses a wrong PSK and an unknown identity at the handshake', async () => {
    const ra = router('router-a');
    await assert.rejects(skipGet({ ...ra, psk: randomBytes(32) }, '/capabilities'));
    await assert.rejects(skipGet({ ...ra, identity: 'router-x' }, '/capabilities'));
  });

  it('speaks TLS-PSK with openssl s_client: TLS 1.2 DHE-PSK, TLS 1.3 with a SHA-256 suite only', async () => {
    const ra = router('router-a');
    const common = ['-connect', `127.0.0.1:${ra.port}`, '-psk', ra.psk.toString('hex'), '-psk_identity', ra.identity];
    const request = 'GET /capabilities HTTP/1.1\r\nHost: kp\r\nConnection: close\r\n\r\n';
    for (const cipher of ['DHE-PSK-AES256-CBC-SHA384', 'DHE-PSK-AES256-CBC-SHA']) {
      const r = await run('openssl', ['s_client', ...common, '-tls1_2', '-cipher', cipher, '-ign_eof'], request);
      assert.match(r.out, new RegExp(`Cipher is ${cipher}`));
      assert.match(r.out, /"localSystemID":"sae-a1"/);
    }
    const t13 = await run(
      'openssl',
      ['s_client', ...common, '-tls1_3', '-ciphersuites', 'TLS_AES_128_GCM_SHA256', '-ign_eof'],
      request,
    );
    assert.match(t13.out, /TLSv1\.3, Cipher is TLS_AES_128_GCM_SHA256/);
    assert.match(t13.out, /"localSystemID":"sae-a1"/);
    // The draft's REQUIRED TLS 1.3 suite: Node's PSK server cannot serve it (docs/skip.md).
    const t13x = await run(
      'openssl',
      ['s_client', ...common, '-tls1_3', '-ciphersuites', 'TLS_AES_256_GCM_SHA384', '-ign_eof'],
      request,
    );
    assert.doesNotMatch(t13x.out, /localSystemID/);
  });

  it('cannot be reached with curl, which has no TLS-PSK', async () => {
    const help = await run('curl', ['--help', 'all']);
    assert.doesNotMatch(help.out, /psk/i);
    const r = await run('curl', ['-sS', '-k', `https://127.0.0.1:${router('router-a').port}/capabilities`]);
    assert.notEqual(r.code, 0);
    assert.doesNotMatch(r.out, /localSystemID/);
  });

  // Last: it stops the remote site's KME.
  it('answers 500 when the key cannot be supplied (the remote KME is down)', async () => {
    await sites.stopKme('kme-b');
    const answer = await skipGet(router('router-a'), '/key?remoteSystemID=sae-b1');
    assert.equal(answer.status, 500);
    assert.equal(answer.body['key'], undefined);
  });
});

describe('SKIP key provider between sites joined through a relay (line:3)', () => {
  let sites: TwoSites;
  let router: (id: string) => Router;
  before(async () => {
    ({ sites, router } = await skipSites(
      { topology: builtInTopology('line:3') },
      { 'router-a': 'sae-a1', 'router-c': 'sae-c1' },
    ));
  });
  after(() => sites?.stop());

  it('gives the same key at both ends, once', async () => {
    const caps = await skipGet(router('router-c'), '/capabilities');
    assert.ok((caps.body['remoteSystemID'] as string[]).includes('sae-a1'));
    const a = await newKey(router('router-a'), 'sae-c1');
    const c = await skipGet(router('router-c'), `/key/${a.keyId}?remoteSystemID=sae-a1`);
    assert.equal(c.status, 200);
    assert.ok(c.body['key'] === a.key, 'the two ends got different keys');
    const again = await skipGet(router('router-c'), `/key/${a.keyId}?remoteSystemID=sae-a1`);
    assert.equal(again.status, 400);
  });
});
