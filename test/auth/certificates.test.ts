import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { connect } from 'node:tls';
import { KmeClient, KmeError } from '../../src/sae/kme-client.js';
import { CertificateAuthority } from '../../src/pki/authority.js';
import { createCa, issueCertificate, type LeafRequest } from '../../src/pki/certificates.js';
import { TestClient } from '../helpers/sae-client.js';
import { UNAUTHORIZED_TEXT } from '../api/etsi-helpers.js';
import { startSites, type TwoSites } from '../helpers/two-kmes.js';

const BIN = join(process.cwd(), 'bin', 'qks.js');
const STATUS = '/api/v1/keys/sae-b1/status';
const DAY = 86_400_000;

/** `qks pki …` as an operator runs it, in its own process; its JSON output. */
function qksPki(...args: string[]): unknown {
  const run = spawnSync(process.execPath, [BIN, 'pki', ...args], { encoding: 'utf8' });
  assert.equal(run.status, 0, run.stderr);
  return JSON.parse(run.stdout);
}

/**
 * What a TLS client sees at a port with the given credentials: the HTTP status line, or how the
 * connection ended without one.
 */
function rawRequest(port: number, tls: { ca: Buffer; cert: Buffer; key: Buffer }): Promise<string> {
  return new Promise((resolve) => {
    const socket = connect({ host: '127.0.0.1', port, ...tls, checkServerIdentity: () => undefined });
    // TLS 1.3: the client's side of the handshake is done before the server has judged its
    // certificate; the server's refusal shows as the connection closing before any answer.
    socket.once('secureConnect', () => socket.write('GET /kme/v1/none HTTP/1.1\r\nhost: x\r\n\r\n'));
    socket.once('data', (d: Buffer) => {
      resolve(d.toString().split('\r\n')[0]!);
      socket.destroy();
    });
    socket.once('error', (err: NodeJS.ErrnoException) => resolve(`error: ${err.code ?? err.message}`));
    socket.once('close', () => resolve('closed'));
  });
}

describe('certificates: who may speak to a KME', () => {
  let sites: TwoSites;
  const scratch = mkdtempSync(join(tmpdir(), 'qks-certs-'));
  let saeUrl: string;
  const sae = (id: string) => sites.deployment.saes.find((s) => s.id === id)!;
  const pki = () => join(sites.deployment.dir, 'pki');
  /** Status of one request on a fresh connection with the given certificate (or none). */
  const statusWith = async (files: { cert?: string; key?: string }) => {
    const client = new TestClient(saeUrl, { ca: sites.deployment.ca, ...files });
    try {
      const res = await client.get(STATUS);
      if (res.status !== 401) return String(res.status);
      return res.text === UNAUTHORIZED_TEXT ? '401 unauthorized' : `401 ${JSON.stringify(res.text)}`;
    } finally {
      await client.close();
    }
  };
  const write = (name: string, pem: { cert: string; key: string }) => {
    writeFileSync(join(scratch, `${name}.pem`), pem.cert);
    writeFileSync(join(scratch, `${name}.key`), pem.key);
    return { cert: join(scratch, `${name}.pem`), key: join(scratch, `${name}.key`) };
  };
  const saeRequest = (id: string, extra: Partial<LeafRequest> = {}): LeafRequest => ({
    commonName: id,
    entity: { kind: 'sae', id },
    client: true,
    ...extra,
  });
  const saeCa = () => ({
    cert: readFileSync(join(pki(), 'sae-ca.pem'), 'utf8'),
    key: readFileSync(join(pki(), 'sae-ca.key'), 'utf8'),
  });

  before(async () => {
    sites = await startSites();
    saeUrl = `https://127.0.0.1:${sites.deployment.configs[0]!.config.sae_api.port}`;
  });
  after(async () => {
    await sites.stop();
    rmSync(scratch, { recursive: true, force: true });
  });

  it('refuses with 401 unauthorized: no certificate, another CA’s, an expired or future one, a KME’s', async () => {
    const foreignCa = await createCa('QKS SAE CA'); // the same name, another key
    const foreign = write('foreign', await issueCertificate(foreignCa, saeRequest('sae-a1')));
    const expired = write(
      'expired',
      await issueCertificate(
        saeCa(),
        saeRequest('sae-a1', { notBefore: new Date(Date.now() - 10 * DAY), notAfter: new Date(Date.now() - DAY) }),
      ),
    );
    const future = write(
      'future',
      await issueCertificate(saeCa(), saeRequest('sae-a1', { notBefore: new Date(Date.now() + DAY) })),
    );
    // Signed by the SAE CA but naming a KME: trusted, and still no SAE.
    const kmeNamed = write(
      'kme-named',
      await issueCertificate(saeCa(), { commonName: 'kme-a', entity: { kind: 'kme', id: 'kme-a' }, client: true }),
    );
    const kmeCert = join(pki(), 'kme-a', 'kme-api');
    const kmeServer = join(pki(), 'kme-a', 'sae-api');
    const refused = {
      none: await statusWith({}),
      'another CA': await statusWith(foreign),
      expired: await statusWith(expired),
      'not yet valid': await statusWith(future),
      'a KME certificate': await statusWith({ cert: `${kmeCert}.pem`, key: `${kmeCert}.key` }),
      'the KME’s own SAE API certificate': await statusWith({ cert: `${kmeServer}.pem`, key: `${kmeServer}.key` }),
      'an SAE CA certificate naming a KME': await statusWith(kmeNamed),
    };
    assert.deepEqual(refused, Object.fromEntries(Object.keys(refused).map((k) => [k, '401 unauthorized'])));
    // Each refusal is logged with what the caller presented: its certificate's names, verified or not.
    const refusals = readFileSync(join(sites.deployment.dir, 'kme-a.log'), 'utf8')
      .split('\n')
      .filter((l) => l.includes('refused: not authenticated'))
      .map(
        (l) => JSON.parse(l) as { presented?: { certificate?: { san: string; verified: boolean; error?: string } } },
      );
    const certs = refusals.map((r) => r.presented?.certificate);
    assert.ok(certs.includes(undefined), 'no certificate: nothing presented');
    const named = (uri: string, verified: boolean) =>
      certs.filter((c) => c?.san.includes(uri) && c.verified === verified).length;
    assert.ok(named('URI:urn:qks:sae:sae-a1', false) >= 3, 'another CA’s, expired and future SAE certificates');
    assert.ok(
      certs.some((c) => c?.san.includes('sae-a1') && /expired/i.test(c.error ?? '')),
      'with the reason OpenSSL gave',
    );
    assert.ok(named('URI:urn:qks:kme:kme-a', true) >= 1, 'a valid certificate that names a KME, not an SAE');
    // The same CA and validity rules let a proper certificate in: the refusals above were for cause.
    const fresh = write('fresh', await issueCertificate(saeCa(), saeRequest('sae-a1')));
    assert.equal(await statusWith(fresh), '200');
  });

  it('an SAE certificate does not open the KME-to-KME channel', async () => {
    const kmeApi = sites.deployment.configs[0]!.config.kme_api;
    const ca = readFileSync(kmeApi.ca);
    const asSae = await rawRequest(kmeApi.port, {
      ca,
      cert: readFileSync(sae('sae-a1').cert),
      key: readFileSync(sae('sae-a1').key),
    });
    assert.match(asSae, /^(closed|error: \w+)$/, `refused at the handshake, no HTTP: ${asSae}`);
    // A KME's own certificate completes the handshake and gets an HTTP answer.
    const kme = join(pki(), 'kme-b', 'kme-api');
    const asKme = await rawRequest(kmeApi.port, {
      ca,
      cert: readFileSync(`${kme}.pem`),
      key: readFileSync(`${kme}.key`),
    });
    assert.match(asKme, /^HTTP\/1\.1 \d{3}/, asKme);
  });

  it('the KME-to-KME port refuses another CA’s, an expired and a revoked KME certificate', async () => {
    const kmeApi = sites.deployment.configs[0]!.config.kme_api;
    const ca = readFileSync(kmeApi.ca);
    const kmeCa = {
      cert: readFileSync(join(pki(), 'kme-ca.pem'), 'utf8'),
      key: readFileSync(join(pki(), 'kme-ca.key'), 'utf8'),
    };
    const kmeRequest = (id: string, extra: Partial<LeafRequest> = {}): LeafRequest => ({
      commonName: id,
      entity: { kind: 'kme', id },
      client: true,
      ...extra,
    });
    const at = async (files: { cert: string; key: string }) =>
      rawRequest(kmeApi.port, { ca, cert: readFileSync(files.cert), key: readFileSync(files.key) });
    const refusedAtHandshake = /^(closed|error: \w+)$/;
    const foreign = write('kme-foreign', await issueCertificate(await createCa('QKS KME CA'), kmeRequest('kme-b')));
    assert.match(await at(foreign), refusedAtHandshake, 'another CA’s KME certificate');
    const expired = write(
      'kme-expired',
      await issueCertificate(
        kmeCa,
        kmeRequest('kme-b', { notBefore: new Date(Date.now() - 10 * DAY), notAfter: new Date(Date.now() - DAY) }),
      ),
    );
    assert.match(await at(expired), refusedAtHandshake, 'an expired KME certificate');
    // qks pki issue --kme: a certificate of the real KME CA opens the port …
    const issued = qksPki('issue', '--dir', sites.deployment.dir, '--kme', 'kme-c', '--host', '127.0.0.1') as {
      cert: string;
      key: string;
    };
    assert.match(await at(issued), /^HTTP\/1\.1 \d{3}/, 'a fresh KME certificate gets an HTTP answer');
    // … until it is revoked; the running KME reloads the revocation list.
    qksPki('revoke', '--dir', sites.deployment.dir, '--kme', 'kme-c');
    const started = Date.now();
    let answer = await at(issued);
    while (!refusedAtHandshake.test(answer) && Date.now() - started < 5000) {
      await new Promise((r) => setTimeout(r, 100));
      answer = await at(issued);
    }
    assert.match(answer, refusedAtHandshake, 'a revoked KME certificate');
    // The peer KME's own certificate still works.
    const peer = join(pki(), 'kme-b', 'kme-api');
    assert.match(await at({ cert: `${peer}.pem`, key: `${peer}.key` }), /^HTTP\/1\.1 \d{3}/);
  });

  it('qks pki revoke shuts a certificate out of the running KME once the list changes, open connections too', async (t) => {
    const client = (id: string) =>
      new KmeClient({ url: saeUrl, ca: sites.deployment.ca, cert: sae(id).cert, key: sae(id).key, retries: 0 });
    const [a1, a2] = [client('sae-a1'), client('sae-a2')];
    try {
      // Both hold a kept-alive connection, as an SAE using the SDK does.
      await a1.status('sae-b1');
      await a2.status('sae-b1');
      const revoked = qksPki('revoke', '--dir', sites.deployment.dir, '--sae', 'sae-a2') as Array<{ entity: string }>;
      // The KME watches the list's file: the refusal follows its change, however busy the machine
      // (the delay is reported, not asserted; tests do not time).
      const started = Date.now();
      assert.deepEqual(
        revoked.map((r) => r.entity),
        ['urn:qks:sae:sae-a2'],
      );
      let refusal: unknown;
      while (!refusal && Date.now() - started < 30_000) {
        await a2.status('sae-b1').catch((err: unknown) => (refusal = err));
        await new Promise((r) => setTimeout(r, 50));
      }
      const elapsed = Date.now() - started;
      assert.ok(refusal, 'the revoked SAE was never refused');
      t.diagnostic(`refused ${elapsed} ms after the list changed`);
      // Its kept-alive connection was cut; on a new one it is a 401.
      assert.ok(refusal instanceof KmeError ? refusal.status === 401 : true, String(refusal));
      await assert.rejects(a2.status('sae-b1'), (err: KmeError) => err.status === 401);
      assert.equal(await statusWith(sae('sae-a2')), '401 unauthorized');
      // The others are untouched, on their open connection and on new ones.
      assert.equal((await a1.status('sae-b1')).master_SAE_ID, 'sae-a1');
      assert.equal(await statusWith(sae('sae-a1')), '200');
    } finally {
      await Promise.all([a1.close(), a2.close()]);
    }
    const listed = qksPki('list', '--dir', sites.deployment.dir) as Record<
      string,
      Array<{ entity: string; revoked_at: string | null }>
    >;
    const a2Records = listed['sae-ca']!.filter((r) => r.entity === 'urn:qks:sae:sae-a2');
    assert.deepEqual(
      a2Records.map((r) => r.revoked_at !== null),
      [true],
    );
  });

  it('a certificate issued later is accepted for a configured SAE, only', async () => {
    // qks pki issue writes the new certificate where the revoked one was: keep the old one aside.
    const old = write('revoked', {
      cert: readFileSync(sae('sae-a2').cert, 'utf8'),
      key: readFileSync(sae('sae-a2').key, 'utf8'),
    });
    const reissued = qksPki('issue', '--dir', sites.deployment.dir, '--sae', 'sae-a2') as { cert: string; key: string };
    assert.equal(await statusWith(reissued), '200', 'a new certificate for the revoked SAE');
    assert.equal(await statusWith(old), '401 unauthorized', 'the revoked one stays refused');
    // qks pki issue would register it at a KME (test/cli/pki-register.test.ts): the CA alone does not.
    const stranger = await CertificateAuthority.open(pki(), 'sae-ca').issue(saeRequest('sae-c1'), scratch, 'sae-c1');
    assert.equal(await statusWith(stranger), '401 unauthorized', 'an SAE no KME serves');
  });
});

describe('qks pki on a new directory', () => {
  const dir = mkdtempSync(join(tmpdir(), 'qks-pki-'));
  after(() => rmSync(dir, { recursive: true, force: true }));

  it('create-ca makes both CAs once (keys 0600), issue --sae and --kme sign with them', () => {
    const made = qksPki('create-ca', '--dir', dir) as { created: string[] };
    assert.deepEqual(made.created.sort(), [join(dir, 'pki', 'kme-ca.pem'), join(dir, 'pki', 'sae-ca.pem')]);
    const saeCaPem = readFileSync(join(dir, 'pki', 'sae-ca.pem'), 'utf8');
    for (const name of ['sae-ca', 'kme-ca']) {
      assert.equal(statSync(join(dir, 'pki', `${name}.key`)).mode & 0o777, 0o600, `${name}.key is 0600`);
    }
    assert.deepEqual((qksPki('create-ca', '--dir', dir) as { created: string[] }).created, [], 'once only');
    assert.equal(readFileSync(join(dir, 'pki', 'sae-ca.pem'), 'utf8'), saeCaPem, 'an existing CA is kept');

    const saeCa = new X509Certificate(saeCaPem);
    const kmeCa = new X509Certificate(readFileSync(join(dir, 'pki', 'kme-ca.pem')));
    const sae = qksPki('issue', '--dir', dir, '--sae', 'sae-x1') as { cert: string; key: string };
    const saeCert = new X509Certificate(readFileSync(sae.cert));
    assert.ok(saeCert.verify(saeCa.publicKey), 'the SAE certificate is signed by the SAE CA');
    assert.ok(!saeCert.verify(kmeCa.publicKey));
    assert.match(saeCert.subjectAltName ?? '', /URI:urn:qks:sae:sae-x1/);
    assert.equal(statSync(sae.key).mode & 0o777, 0o600);

    const kme = qksPki('issue', '--dir', dir, '--kme', 'kme-x', '--host', '127.0.0.1') as { cert: string; key: string };
    const kmeCert = new X509Certificate(readFileSync(kme.cert));
    assert.ok(kmeCert.verify(kmeCa.publicKey), 'the KME certificate is signed by the KME CA');
    assert.ok(!kmeCert.verify(saeCa.publicKey));
    assert.match(kmeCert.subjectAltName ?? '', /URI:urn:qks:kme:kme-x/);
    assert.match(kmeCert.subjectAltName ?? '', /IP Address:127\.0\.0\.1/);
    for (const f of [
      sae.cert,
      sae.key,
      kme.cert,
      kme.key,
      join(dir, 'pki', 'sae-ca.pem'),
      join(dir, 'pki', 'sae-ca.key'),
    ]) {
      assert.ok(
        readFileSync(f, 'utf8').endsWith('-----\n'),
        `${f} ends with a newline (cat cert key must not fuse them)`,
      );
    }
    assert.equal(statSync(kme.key).mode & 0o777, 0o600);

    const listed = qksPki('list', '--dir', dir) as Record<string, Array<{ entity: string; revoked_at: null | string }>>;
    assert.deepEqual(
      listed['sae-ca']!.map((r) => r.entity),
      ['urn:qks:sae:sae-x1'],
    );
    assert.deepEqual(
      listed['kme-ca']!.map((r) => r.entity),
      ['urn:qks:kme:kme-x'],
    );
    const bad = spawnSync(process.execPath, [BIN, 'pki', 'issue', '--dir', dir, '--kme', 'bad id!'], {
      encoding: 'utf8',
    });
    assert.equal(bad.status, 2);
    assert.match(bad.stderr, /bad ID/);
  });
});
