import assert from 'node:assert/strict';
import { randomBytes, randomUUID } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import type { AddressInfo } from 'node:net';
import { connect, createServer, type TLSSocket } from 'node:tls';
import { freePorts } from '../../src/cli/ports.js';
import { createCa, issueCertificate } from '../../src/pki/certificates.js';
import { FrameReader, MAX_QUEUED_FRAMES, writeFrame } from '../../src/sae/agreement/framing.js';
import { AgreementError, keyProof, type Offer } from '../../src/sae/agreement/messages.js';
import type { AgreedKeys } from '../../src/sae/agreement/types.js';
import { eventually, startSites, type TwoSites } from '../helpers/two-kmes.js';
import { Initiator } from '../../src/sae/agreement/initiator.js';
import { initiatorFor, madeUpOffer, responderFor, saeOf } from './sae-fixture.js';

const agreedNext = (responder: ReturnType<typeof responderFor>) =>
  new Promise<AgreedKeys>((resolve) => responder.once('keys', resolve));
const failureNext = (responder: ReturnType<typeof responderFor>) =>
  new Promise<AgreementError>((resolve) => responder.once('failure', resolve));

/** Starts `responder` listening and counts the key sets it hands on. */
async function listenCounting(responder: ReturnType<typeof responderFor>) {
  let handed = 0;
  responder.on('keys', () => handed++);
  const { port } = await responder.listen();
  return { port, handed: () => handed };
}

/** A raw TLS client speaking the agreement protocol with some SAE's certificate, for forgeries. */
async function rawClient(
  sites: TwoSites,
  sae: string,
  port: number,
): Promise<{ socket: TLSSocket; reader: FrameReader }> {
  const { tls } = saeOf(sites, sae);
  const socket = await new Promise<TLSSocket>((resolve, reject) => {
    const s = connect({ host: '127.0.0.1', port, ...tls, checkServerIdentity: () => undefined }, () => resolve(s));
    s.once('error', reject);
  });
  return { socket, reader: new FrameReader(socket) };
}

describe('SAE-to-SAE key agreement', () => {
  let sites: TwoSites;
  before(async () => {
    sites = await startSites({ access: { admins: ['sae-a2'] } }); // sae-a2 sets preferences at kme-a
    const { kme } = saeOf(sites, 'sae-a1');
    await eventually(async () => (await kme.status('sae-b1')).stored_key_count > 100, 10_000);
  });
  after(() => sites.stop());

  it('ends with the same keys on both sides, equal to what the KMEs delivered', async () => {
    const responder = responderFor(sites, 'sae-b1', ['sae-a1']);
    const { port } = await responder.listen();
    const initiator = initiatorFor(sites, 'sae-a1', 'sae-b1', port);
    try {
      const heard = agreedNext(responder);
      const mine = await initiator.agree(3, 512);
      const theirs = await heard;
      assert.equal(mine.keys.length, 3);
      assert.deepEqual(
        theirs.keys.map((k) => k.keyId),
        mine.keys.map((k) => k.keyId),
      );
      for (const [i, k] of mine.keys.entries()) {
        assert.equal(k.key.length, 64);
        assert.ok(k.key.equals(theirs.keys[i]!.key), 'same bytes on both sides');
      }
      assert.equal(theirs.peer, 'sae-a1');
      // The KME gave them out once: the responder's KME has nothing left for these IDs.
      const { kme } = saeOf(sites, 'sae-b1');
      await assert.rejects(kme.getKeysWithIds('sae-a1', [mine.keys[0]!.keyId]), /not found/);
    } finally {
      initiator.close();
      await responder.close();
    }
  });

  it('waits for a responder that starts late, within a bound', async () => {
    const [port] = await freePorts(1);
    const initiator = initiatorFor(sites, 'sae-a1', 'sae-b1', port!, 5000);
    const responder = responderFor(sites, 'sae-b1', ['sae-a1'], port!);
    try {
      const agreeing = initiator.agree(1);
      await new Promise((r) => setTimeout(r, 600));
      await responder.listen();
      assert.equal((await agreeing).keys.length, 1);
    } finally {
      initiator.close();
      await responder.close();
    }
  });

  it('fails with timeout when the responder never comes, and takes no keys', async () => {
    const [port] = await freePorts(1);
    const initiator = initiatorFor(sites, 'sae-a1', 'sae-b1', port!, 800);
    const delivered = async () =>
      ((await sites.sae('sae-a1').get('/api/v1/information/info')).body as { keys_delivered: { to_masters: number } })
        .keys_delivered.to_masters;
    const before = await delivered();
    await assert.rejects(initiator.agree(1), (err: AgreementError) => err.code === 'timeout');
    assert.equal(await delivered(), before, 'no key was taken from the KME');
    initiator.close();
  });

  it('fails cleanly when the responder dies mid-exchange', async () => {
    // A responder that reads the offer and then vanishes without acknowledging it.
    const { tls } = saeOf(sites, 'sae-b1');
    let offered = false;
    const server = createServer({ ...tls, requestCert: true }, (socket) => {
      new FrameReader(socket).next(5000).then(
        () => {
          offered = true;
          socket.destroy();
        },
        () => socket.destroy(),
      );
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const initiator = initiatorFor(sites, 'sae-a1', 'sae-b1', (server.address() as AddressInfo).port);
    try {
      await assert.rejects(
        initiator.agree(1),
        (err: AgreementError) => err instanceof AgreementError && err.code === 'timeout',
      );
      assert.ok(offered, 'the offer was sent before the responder died');
    } finally {
      initiator.close();
      await new Promise((r) => server.close(r));
    }
  });

  /** A responder that fetches the offered keys, then misbehaves as `how` says. */
  async function brokenResponder(how: 'dies' | 'wrong-proof' | 'old-version') {
    const { tls, kme } = saeOf(sites, 'sae-b1');
    const seen: string[] = [];
    const server = createServer({ ...tls, requestCert: true }, (socket) => {
      socket.on('error', () => undefined);
      const reader = new FrameReader(socket);
      void (async () => {
        const offer = (await reader.next(5000)) as Offer;
        seen.push('offer');
        if (how === 'old-version') {
          writeFrame(socket, { v: 2, type: 'error', code: 'unsupported_version', message: 'protocol version 3' });
          return;
        }
        const got = await kme.getKeysWithIds(offer.master, offer.key_IDs);
        const keys = got.keys.map((k) => Buffer.from(k.key, 'base64'));
        if (offer.proof === keyProof('offer', offer, keys)) seen.push('valid proof');
        if (how === 'dies') return socket.destroy(); // holds the keys, never acknowledges
        // Echoes the initiator's own proof: it proves nothing about the responder.
        writeFrame(socket, { v: 3, type: 'ack', exchange: offer.exchange, proof: offer.proof });
      })().catch(() => socket.destroy());
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const close = async () => {
      await kme.close();
      await new Promise((r) => server.close(r));
    };
    return { port: (server.address() as AddressInfo).port, seen, close };
  }

  it('an initiator whose responder dies after fetching the keys uses none', async () => {
    const broken = await brokenResponder('dies');
    const initiator = initiatorFor(sites, 'sae-a1', 'sae-b1', broken.port);
    try {
      await assert.rejects(initiator.agree(2), (err: AgreementError) => {
        assert.ok(err instanceof AgreementError);
        assert.equal(err.code, 'timeout');
        assert.match(err.message, /responder did not acknowledge/);
        return true;
      });
      assert.deepEqual(broken.seen, ['offer', 'valid proof'], 'the responder got the keys before it died');
    } finally {
      initiator.close();
      await broken.close();
    }
  });

  it('an initiator refuses an acknowledgement that does not prove the same keys', async () => {
    const broken = await brokenResponder('wrong-proof');
    const initiator = initiatorFor(sites, 'sae-a1', 'sae-b1', broken.port);
    try {
      await assert.rejects(initiator.agree(1), (err: AgreementError) => err.code === 'bad_proof');
      assert.deepEqual(broken.seen, ['offer', 'valid proof']);
    } finally {
      initiator.close();
      await broken.close();
    }
  });

  it('a responder refuses an offer whose proof does not match the keys, and hands on none', async () => {
    const responder = responderFor(sites, 'sae-b1', ['sae-a1']);
    const failed = failureNext(responder);
    const { port, handed } = await listenCounting(responder);
    const { kme } = saeOf(sites, 'sae-a1');
    const { socket, reader } = await rawClient(sites, 'sae-a1', port);
    try {
      const got = await kme.getKeys('sae-b1', { number: 2 });
      const terms = {
        exchange: randomUUID(),
        master: 'sae-a1',
        slave: 'sae-b1',
        key_IDs: got.keys.map((k) => k.key_ID),
      };
      // Right key IDs, but a proof made with other keys: the initiator does not hold these.
      const proof = keyProof('offer', terms, [randomBytes(32), randomBytes(32)]);
      writeFrame(socket, { v: 3, type: 'offer', ...terms, proof });
      const reply = (await reader.next(3000)) as { type: string; code: string };
      assert.deepEqual([reply.type, reply.code], ['error', 'bad_proof']);
      assert.equal((await failed).code, 'bad_proof');
      assert.equal(handed(), 0, 'no keys handed on');
      // The KME delivered them once, to the responder, which wiped them: they cannot come again.
      await assert.rejects(saeOf(sites, 'sae-b1').kme.getKeysWithIds('sae-a1', terms.key_IDs), /not found/);
    } finally {
      socket.destroy();
      await kme.close();
      await responder.close();
    }
  });

  it('a responder whose dec_keys outlasts its exchange timeout refuses and hands on none', async () => {
    // A timeout of 0 ms: any dec_keys takes longer, as a slow KME would against a real timeout.
    const responder = responderFor(sites, 'sae-b1', ['sae-a1'], 0, 0);
    const failed = failureNext(responder);
    const { port, handed } = await listenCounting(responder);
    const initiator = initiatorFor(sites, 'sae-a1', 'sae-b1', port);
    try {
      await assert.rejects(initiator.agree(1), (err: AgreementError) => {
        assert.equal(err.code, 'timeout');
        assert.match(err.message, /could not fetch the keys within 0 ms/);
        return true;
      });
      assert.equal((await failed).code, 'timeout');
      assert.equal(handed(), 0, 'no keys handed on');
    } finally {
      initiator.close();
      await responder.close();
    }
  });

  it('waits as long as the SAE’s key_exchange_timeout preference says', async () => {
    const setTimeoutPref = (seconds: number) =>
      sites.sae('sae-a2').post('/api/v1/preferences/preference', {
        name: 'key_exchange_timeout',
        value: seconds,
        SAE_ID: 'sae-a1',
      });
    assert.equal((await setTimeoutPref(1)).status, 200);
    // A responder that reads the offer and never answers.
    const { tls } = saeOf(sites, 'sae-b1');
    const server = createServer({ ...tls, requestCert: true }, (socket) => {
      socket.on('error', () => undefined);
      new FrameReader(socket).next(10_000).catch(() => socket.destroy());
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const { kme, tls: mine } = saeOf(sites, 'sae-a1');
    // No timeoutMs: the initiator asks its KME for sae-a1's preference.
    const initiator = new Initiator({
      saeId: 'sae-a1',
      peerSaeId: 'sae-b1',
      peer: { host: '127.0.0.1', port: (server.address() as AddressInfo).port },
      kme,
      tls: mine,
    });
    try {
      const started = Date.now();
      await assert.rejects(initiator.agree(1), (err: AgreementError) => {
        assert.equal(err.code, 'timeout');
        assert.match(err.message, /within 1000 ms/);
        return true;
      });
      const waited = Date.now() - started;
      assert.ok(waited >= 900 && waited < 5000, `gave up after ${waited} ms, not the default 30 s`);
    } finally {
      initiator.close();
      await kme.close();
      await new Promise((r) => server.close(r));
      assert.equal((await setTimeoutPref(30)).status, 200);
    }
  });

  it('reads an older peer’s refusal of this protocol version', async () => {
    const broken = await brokenResponder('old-version');
    const initiator = initiatorFor(sites, 'sae-a1', 'sae-b1', broken.port);
    try {
      await assert.rejects(initiator.agree(1), (err: AgreementError) => err.code === 'unsupported_version');
    } finally {
      initiator.close();
      await broken.close();
    }
  });

  it('refuses a connection with no client certificate, or one of another CA naming the master', async () => {
    const responder = responderFor(sites, 'sae-b1', ['sae-a1']);
    const { port, handed } = await listenCounting(responder);
    const { tls } = saeOf(sites, 'sae-a1');
    const foreignCa = await createCa('QKS SAE CA'); // the same name, another key
    const forged = await issueCertificate(foreignCa, {
      commonName: 'sae-a1',
      entity: { kind: 'sae', id: 'sae-a1' },
      client: true,
    });
    /** Connects with `creds`, sends an offer, and reports how the responder answered. */
    const attempt = (creds: { cert?: string | Buffer; key?: string | Buffer }) =>
      new Promise<string>((resolve) => {
        const socket = connect({ host: '127.0.0.1', port, ca: tls.ca, ...creds, checkServerIdentity: () => undefined });
        socket.once('secureConnect', () => writeFrame(socket, madeUpOffer()));
        new FrameReader(socket).next(3000).then(
          (reply) => resolve(`answered ${JSON.stringify(reply)}`),
          (err: Error) => resolve(`refused: ${err.message}`),
        );
        socket.on('error', () => undefined);
      });
    try {
      assert.match(await attempt({}), /^refused/, 'no client certificate');
      assert.match(await attempt({ cert: forged.cert, key: forged.key }), /^refused/, 'another CA’s certificate');
      assert.equal(handed(), 0);
      // The same path with the real certificate gets an answer (a kme_refused for the made-up key ID).
      assert.match(await attempt({ cert: tls.cert, key: tls.key }), /kme_refused/);
    } finally {
      await responder.close();
    }
  });

  it('an initiator refuses a responder whose certificate another CA issued', async () => {
    const foreignCa = await createCa('QKS SAE CA');
    const forged = await issueCertificate(foreignCa, {
      commonName: 'sae-b1',
      entity: { kind: 'sae', id: 'sae-b1' },
      client: true,
      server: { dns: ['localhost'], ips: ['127.0.0.1'] },
    });
    const server = createServer({ cert: forged.cert, key: forged.key }, (s) => s.destroy());
    server.on('tlsClientError', () => undefined);
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const initiator = initiatorFor(sites, 'sae-a1', 'sae-b1', (server.address() as AddressInfo).port, 500);
    const delivered = async () =>
      ((await sites.sae('sae-a1').get('/api/v1/information/info')).body as { keys_delivered: { to_masters: number } })
        .keys_delivered.to_masters;
    const before = await delivered();
    try {
      await assert.rejects(initiator.agree(1), (err: AgreementError) => err.code === 'timeout');
      assert.equal(await delivered(), before, 'no key was taken for an impostor');
    } finally {
      initiator.close();
      await new Promise((r) => server.close(r));
    }
  });

  it('refuses offers from an SAE that is not an allowed master', async () => {
    const responder = responderFor(sites, 'sae-b1', ['sae-a1']);
    const { port } = await responder.listen();
    const failed = failureNext(responder);
    const { socket, reader } = await rawClient(sites, 'sae-a2', port);
    try {
      const reply = (await reader.next(2000)) as { type: string; code: string };
      assert.deepEqual([reply.type, reply.code], ['error', 'wrong_peer']);
      assert.equal((await failed).code, 'wrong_peer');
    } finally {
      socket.destroy();
      await responder.close();
    }
  });

  it('refuses forged, misaddressed, replayed and unknown offers', async () => {
    const responder = responderFor(sites, 'sae-b1', ['sae-a1']);
    responder.on('failure', () => undefined);
    const { port } = await responder.listen();
    const { socket, reader } = await rawClient(sites, 'sae-a1', port);
    const ask = async (message: unknown) => {
      writeFrame(socket, message);
      return ((await reader.next(3000)) as { code: string }).code;
    };
    try {
      assert.equal(await ask(madeUpOffer({ master: 'sae-a2' })), 'wrong_peer');
      assert.equal(await ask(madeUpOffer({ slave: 'sae-b2' })), 'not_addressed_to_me');
      assert.equal(await ask(madeUpOffer({})), 'kme_refused', 'key IDs the KME does not hold for this pair');
      const { kme } = saeOf(sites, 'sae-a1');
      const real = await kme.getKeys('sae-b2', { number: 1 }); // addressed to another slave
      assert.equal(await ask(madeUpOffer({ key_IDs: [real.keys[0]!.key_ID] })), 'kme_refused');
      assert.equal(await ask(madeUpOffer({ key_IDs: [real.keys[0]!.key_ID] })), 'replay');
      assert.equal(await ask({ ...madeUpOffer({}), v: 2 }), 'unsupported_version', 'version 2 took two round trips');
      assert.equal(await ask({ ...madeUpOffer({}), v: 4 }), 'unsupported_version');
      // Last: a malformed message also ends the connection.
      assert.equal(await ask(madeUpOffer({ proof: undefined })), 'bad_message', 'an offer must carry its proof');
    } finally {
      socket.destroy();
      await responder.close();
    }
  });

  it('cuts off a master that pipelines more offers than the protocol has answers for', async () => {
    const responder = responderFor(sites, 'sae-b1', ['sae-a1']);
    responder.on('failure', () => undefined);
    const { port, handed } = await listenCounting(responder);
    const { socket, reader } = await rawClient(sites, 'sae-a1', port);
    const closed = new Promise<void>((resolve) => socket.once('close', () => resolve()));
    try {
      // An allowed master, 200 offers in one go: each costs the responder a dec_keys call.
      for (let i = 0; i < 200; i++) writeFrame(socket, madeUpOffer());
      let replies = 0;
      for (;;) {
        const reply = await reader.next(10_000).catch(() => undefined);
        if (reply === undefined) break; // the connection is gone
        replies++;
        if (replies === 200) break;
      }
      assert.ok(replies <= MAX_QUEUED_FRAMES + 1, `${replies} offers answered before the connection was cut`);
      await closed;
      assert.equal(handed(), 0);
    } finally {
      socket.destroy();
      await responder.close();
    }
  });

  it('accepts nothing over a malformed frame', async () => {
    const responder = responderFor(sites, 'sae-b1', ['sae-a1']);
    responder.on('failure', () => undefined);
    const { port, handed } = await listenCounting(responder);
    const { socket, reader } = await rawClient(sites, 'sae-a1', port);
    try {
      socket.write(Buffer.from([0, 0, 0, 5, 0x7b, 0x7b, 0x7b, 0x7b, 0x7b]));
      await assert.rejects(reader.next(3000));
      assert.equal(handed(), 0);
    } finally {
      socket.destroy();
      await responder.close();
    }
  });
});
