import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { connect } from 'node:tls';
import { CertificateAuthority } from '../../src/pki/authority.js';
import { createCa, issueCertificate } from '../../src/pki/certificates.js';
import { TestClient } from '../helpers/sae-client.js';
import { eventually, startSites, type TwoSites } from '../helpers/two-kmes.js';

const BIN = join(process.cwd(), 'bin', 'qks.js');

describe('certificates: who may speak to a KME', () => {
  let sites: TwoSites;
  const scratch = mkdtempSync(join(tmpdir(), 'qks-certs-'));
  let saeUrl: string;
  const clientWith = (cert: string, key: string) => new TestClient(saeUrl, { ca: sites.deployment.ca, cert, key });
  const write = (name: string, pem: { cert: string; key: string }) => {
    writeFileSync(join(scratch, `${name}.pem`), pem.cert);
    writeFileSync(join(scratch, `${name}.key`), pem.key);
    return { cert: join(scratch, `${name}.pem`), key: join(scratch, `${name}.key`) };
  };
  const status = async (client: TestClient) => {
    try {
      return (await client.get('/api/v1/keys/sae-b1/status')).status;
    } finally {
      await client.close();
    }
  };

  before(async () => {
    sites = await startSites();
    saeUrl = `https://127.0.0.1:${sites.deployment.configs[0]!.config.sae_api.port}`;
  });
  after(async () => {
    await sites.stop();
    rmSync(scratch, { recursive: true, force: true });
  });

  it('refuses a certificate from another CA, an expired one, and a KME certificate as an SAE', async () => {
    const otherCa = await createCa('Somebody else');
    const foreign = write(
      'foreign',
      await issueCertificate(otherCa, { commonName: 'sae-a1', entity: { kind: 'sae', id: 'sae-a1' }, client: true }),
    );
    assert.equal(await status(clientWith(foreign.cert, foreign.key)), 401);

    const pki = join(sites.deployment.dir, 'pki');
    const saeCa = {
      cert: readFileSync(join(pki, 'sae-ca.pem'), 'utf8'),
      key: readFileSync(join(pki, 'sae-ca.key'), 'utf8'),
    };
    const day = 86_400_000;
    const expired = write(
      'expired',
      await issueCertificate(saeCa, {
        commonName: 'sae-a1',
        entity: { kind: 'sae', id: 'sae-a1' },
        client: true,
        notBefore: new Date(Date.now() - 10 * day),
        notAfter: new Date(Date.now() - day),
      }),
    );
    assert.equal(await status(clientWith(expired.cert, expired.key)), 401);

    const kmeCert = join(pki, 'kme-a', 'kme-api');
    assert.equal(await status(clientWith(`${kmeCert}.pem`, `${kmeCert}.key`)), 401, 'a KME certificate is not an SAE');
    const sae = sites.deployment.saes.find((s) => s.id === 'sae-a1')!;
    assert.equal(await status(clientWith(sae.cert, sae.key)), 200);
  });

  it('an SAE certificate does not open the KME-to-KME channel', async () => {
    const sae = sites.deployment.saes.find((s) => s.id === 'sae-a1')!;
    const kmeApi = sites.deployment.configs[0]!.config.kme_api;
    const outcome = await new Promise<string>((resolve) => {
      const socket = connect({
        host: '127.0.0.1',
        port: kmeApi.port,
        ca: readFileSync(kmeApi.ca),
        cert: readFileSync(sae.cert),
        key: readFileSync(sae.key),
        checkServerIdentity: () => undefined,
      });
      socket.once('secureConnect', () => {
        // TLS 1.3 reports a refused client certificate after the handshake: try a request.
        socket.write(
          'POST /kme/v1/cancellations HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\ncontent-length: 13\r\n\r\n{"key_IDs":[]}',
        );
      });
      socket.on('data', (d: Buffer) => resolve(d.toString().split('\r\n')[0]!));
      socket.once('error', (err) => resolve(`error: ${err.message}`));
      socket.once('close', () => resolve('closed'));
    });
    assert.doesNotMatch(outcome, /200/, outcome);
  });

  it('revoking a certificate with qks pki shuts it out of the running KME, and only it', async () => {
    const a2 = sites.deployment.saes.find((s) => s.id === 'sae-a2')!;
    const a1 = sites.deployment.saes.find((s) => s.id === 'sae-a1')!;
    assert.equal(await status(clientWith(a2.cert, a2.key)), 200);
    const run = spawnSync(process.execPath, [BIN, 'pki', 'revoke', '--dir', sites.deployment.dir, '--sae', 'sae-a2'], {
      encoding: 'utf8',
    });
    assert.equal(run.status, 0, run.stderr);
    await eventually(
      async () => (await status(clientWith(a2.cert, a2.key))) === 401,
      5000,
      'the revocation to take effect',
    );
    assert.equal(await status(clientWith(a1.cert, a1.key)), 200);
    const ca = CertificateAuthority.open(join(sites.deployment.dir, 'pki'), 'sae-ca');
    assert.ok(ca.list().some((r) => r.entity === 'urn:qks:sae:sae-a2' && r.revoked_at !== null));
  });

  it('a certificate issued later with qks pki is accepted', async () => {
    const run = spawnSync(process.execPath, [BIN, 'pki', 'issue', '--dir', sites.deployment.dir, '--sae', 'sae-a2'], {
      encoding: 'utf8',
    });
    assert.equal(run.status, 0, run.stderr);
    const issued = JSON.parse(run.stdout) as { cert: string; key: string };
    assert.equal(await status(clientWith(issued.cert, issued.key)), 200, 'a new certificate for the same SAE');
  });
});
