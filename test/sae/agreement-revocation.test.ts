import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { connect, type TLSSocket } from 'node:tls';
import { CertificateAuthority } from '../../src/pki/authority.js';
import { FrameReader, writeFrame } from '../../src/sae/agreement/framing.js';
import { Initiator } from '../../src/sae/agreement/initiator.js';
import type { AgreementError } from '../../src/sae/agreement/messages.js';
import { Responder } from '../../src/sae/agreement/responder.js';
import type { SaeTls } from '../../src/sae/agreement/types.js';
import { eventually, startSites, type TwoSites } from '../helpers/two-kmes.js';
import { madeUpOffer, saeOf } from './sae-fixture.js';

/**
 * The SAE-to-SAE key agreement honours the SAE CA's revocation list as the KMEs do. Each test
 * revokes a second certificate of an SAE (its first one keeps working at the KMEs), so what is
 * refused is refused by the agreement's own TLS, not by a KME.
 */
describe('the key agreement refuses revoked SAE certificates', () => {
  let sites: TwoSites;
  const scratch = mkdtempSync(join(tmpdir(), 'qks-agree-crl-'));
  const ca = () => CertificateAuthority.open(join(sites.deployment.dir, 'pki'), 'sae-ca');
  const crlFile = () => join(sites.deployment.dir, 'pki', 'sae-ca.crl.pem');

  /** A second certificate of `sae`: its TLS credentials with the list to check peers against, and its serial. */
  async function secondCertificate(sae: string): Promise<{ tls: SaeTls; serial: string }> {
    const files = await ca().issue(
      { commonName: sae, entity: { kind: 'sae', id: sae }, client: true, server: { dns: [], ips: [] } },
      scratch,
      `${sae}-${randomUUID()}`,
    );
    const tls = {
      ca: readFileSync(sites.deployment.ca),
      cert: readFileSync(files.cert),
      key: readFileSync(files.key),
      crlFile: crlFile(),
    };
    return { tls, serial: files.serial };
  }
  const keysTaken = async () =>
    ((await sites.sae('sae-a1').get('/api/v1/information/info')).body as { keys_delivered: { to_masters: number } })
      .keys_delivered.to_masters;

  before(async () => {
    sites = await startSites();
    const { kme } = saeOf(sites, 'sae-a1');
    await eventually(async () => (await kme.status('sae-b1')).stored_key_count > 20, 15_000);
  });
  after(async () => {
    await sites.stop();
    rmSync(scratch, { recursive: true, force: true });
  });

  it('the responder cuts an initiator revoked while connected, and refuses its new handshakes', async () => {
    const { kme } = saeOf(sites, 'sae-b1');
    const responder = new Responder({
      saeId: 'sae-b1',
      peers: ['sae-a1'],
      kme,
      tls: { ...saeOf(sites, 'sae-b1').tls, crlFile: crlFile() },
    });
    const { port } = await responder.listen();
    const second = await secondCertificate('sae-a1');
    const open = (): Promise<{ socket: TLSSocket; reader: FrameReader; closed: Promise<void> }> =>
      new Promise((resolve, reject) => {
        const { ca, cert, key } = second.tls;
        const socket = connect({ host: '127.0.0.1', port, ca, cert, key, checkServerIdentity: () => undefined }, () =>
          resolve({ socket, reader: new FrameReader(socket), closed }),
        );
        const closed = new Promise<void>((r) => socket.once('close', () => r()));
        socket.once('error', reject);
      });
    /** A made-up offer: a live connection answers it (the KME knows no such key), a refused one never does. */
    const offer = (socket: TLSSocket) => writeFrame(socket, madeUpOffer());
    const live = await open();
    try {
      offer(live.socket);
      assert.equal(((await live.reader.next(5000)) as { code: string }).code, 'kme_refused', 'answered before');
      await ca().revoke({ serial: second.serial });
      // Polled: the responder reloads the list within about a second and closes the connection.
      let cut = false;
      void live.closed.then(() => (cut = true));
      await eventually(() => cut, 10_000, 'the revoked initiator’s open connection to be closed');
      // A new handshake with the revoked certificate: no answer, the connection closes.
      const again = await open().catch(() => undefined);
      if (again) {
        again.socket.on('error', () => undefined);
        offer(again.socket);
        await assert.rejects(again.reader.next(5000), 'no answer to a revoked initiator');
        again.socket.destroy();
      }
    } finally {
      live.socket.destroy();
      await responder.close();
    }
  });

  it('the initiator drops a responder revoked while connected and takes no keys for it', async () => {
    const second = await secondCertificate('sae-b1');
    const responder = new Responder({
      saeId: 'sae-b1',
      peers: ['sae-a1'],
      kme: saeOf(sites, 'sae-b1').kme,
      tls: second.tls,
    });
    const { port } = await responder.listen();
    const initiator = new Initiator({
      saeId: 'sae-a1',
      peerSaeId: 'sae-b1',
      peer: { host: '127.0.0.1', port },
      kme: saeOf(sites, 'sae-a1').kme,
      tls: { ...saeOf(sites, 'sae-a1').tls, crlFile: crlFile() },
      connectWithinMs: 1500,
      timeoutMs: 2000,
    });
    try {
      assert.equal((await initiator.agree(1)).keys.length, 1, 'agreed before the revocation');
      await ca().revoke({ serial: second.serial });
      const before = await keysTaken();
      // Polled: once the initiator has the new list, every attempt fails at the handshake.
      let refusal: AgreementError | undefined;
      await eventually(
        async () => {
          refusal = await initiator.agree(1).then(
            () => undefined,
            (err: AgreementError) => err,
          );
          return refusal !== undefined && /revoked/.test(refusal.message);
        },
        15_000,
        'the initiator to refuse the revoked responder',
      );
      assert.equal(refusal!.code, 'timeout', refusal!.message);
      // Attempts that agreed before the list was reloaded took keys; the refused one took none.
      const afterRefusal = await keysTaken();
      await assert.rejects(initiator.agree(1), /revoked/);
      assert.equal(await keysTaken(), afterRefusal, 'no key was taken for a revoked responder');
      assert.ok(afterRefusal >= before);
    } finally {
      initiator.close();
      await responder.close();
    }
  });
});
