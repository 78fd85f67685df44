import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { readFileSync, rmSync } from 'node:fs';
import { createServer, type Server } from 'node:https';
import { connect, createServer as createTlsServer, type TLSSocket } from 'node:tls';
import { after, before, describe, it } from 'node:test';
import { pino } from 'pino';
import type { Deployment } from '../../src/cli/init.js';
import { freePorts } from '../../src/cli/ports.js';
import { QksError } from '../../src/domain/errors.js';
import { PEER_TLS_OPTIONS } from '../../src/kme/http/peer-api.js';
import { PeerStreamClient } from '../../src/kme/peer-stream/client.js';
import { PeerStreamRefusal, RequestNotSent, type StreamHandler } from '../../src/kme/peer-stream/connection.js';
import { attachPeerStream, type PeerStreamServer } from '../../src/kme/peer-stream/server.js';
import { createDeployment } from '../helpers/two-kmes.js';

const log = pino({ level: 'silent' });
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** The peer stream between real KME certificates of a `qks init` deployment, over real TLS sockets. */
describe('KME peer stream', () => {
  let deployment: Deployment;
  let port: number;
  let server: Server;
  let stream: PeerStreamServer;
  const tlsOf = (kme: string) => {
    const c = deployment.configs.find((x) => x.kme === kme)!.config.kme_api;
    return { key: readFileSync(c.key), cert: readFileSync(c.cert), ca: readFileSync(c.ca) };
  };
  const handlers = new Map<string, StreamHandler>([
    ['echo', (p) => Buffer.from(p).reverse()],
    [
      'later',
      async (p) => {
        await sleep(p[0]!);
        return p;
      },
    ],
    [
      'refuse',
      () => {
        throw new QksError('BAD_REQUEST', 'refused: that frame is unknown here');
      },
    ],
    [
      'elsewhere',
      () => {
        throw new QksError('LINK_OWNED_ELSEWHERE', 'another replica runs the link');
      },
    ],
    [
      'crash',
      () => {
        throw new Error('secret internals');
      },
    ],
  ]);
  const startServer = async () => {
    server = createServer({ ...tlsOf('kme-b'), ...PEER_TLS_OPTIONS });
    stream = attachPeerStream(server, { peers: new Set(['kme-a']), handlers, log });
    await new Promise<void>((resolve) => server.listen(port, '127.0.0.1', resolve));
  };
  const stopServer = async () => {
    stream.close();
    await new Promise((resolve) => server.close(resolve));
  };
  const client = (from = 'kme-a', expect = 'kme-b', timeoutMs = 5000) =>
    new PeerStreamClient({ kmeId: expect, url: `https://127.0.0.1:${port}`, tls: tlsOf(from), log, timeoutMs });

  before(async () => {
    deployment = await createDeployment({ kmes: ['kme-a', 'kme-b', 'kme-c'] });
    port = (await freePorts(1))[0]!;
    await startServer();
  });
  after(async () => {
    await stopServer();
    rmSync(deployment.dir, { recursive: true, force: true });
  });

  it('answers many requests at once on one connection, out of order, large ones whole', async () => {
    const c = client();
    try {
      const payloads = Array.from({ length: 40 }, (_, i) => randomBytes(i % 5 === 0 ? 4 << 20 : 1 + i * 97));
      const answers = await Promise.all(payloads.map((p) => c.request('echo', p)));
      answers.forEach((a, i) => assert.ok(a.equals(Buffer.from(payloads[i]!).reverse()), `answer ${i}`));
      // A slow answer does not hold up a quick one behind it.
      const order: number[] = [];
      await Promise.all([
        c.request('later', Buffer.from([150])).then(() => order.push(150)),
        c.request('later', Buffer.from([1])).then(() => order.push(1)),
      ]);
      assert.deepEqual(order, [1, 150]);
      assert.equal(stream.connections().length, 1, 'one connection for all of them');
      assert.equal(stream.connections()[0]!.peer, 'kme-a');
    } finally {
      c.close();
    }
  });

  it('keeps going when both directions fill their buffers (back-pressure without a stall)', async () => {
    const c = client('kme-a', 'kme-b', 20_000);
    try {
      for (let round = 0; round < 3; round++) {
        const payloads = Array.from({ length: 48 }, (_, i) => Buffer.alloc(2 << 20, i + round));
        const answers = await Promise.all(payloads.map((p) => c.request('echo', p)));
        answers.forEach((a, i) => assert.ok(a.length === 2 << 20 && a[0] === i + round, `answer ${i}`));
      }
    } finally {
      c.close();
    }
  });

  it("returns the handler's refusal with its code, hides internal errors, refuses unknown channels", async () => {
    const c = client();
    try {
      await assert.rejects(c.request('refuse', Buffer.alloc(1)), (err: unknown) => {
        assert.ok(err instanceof PeerStreamRefusal);
        assert.equal(err.peerCode, 'BAD_REQUEST');
        assert.match(err.message, /peer KME kme-b refused: refused: that frame is unknown here/);
        return true;
      });
      await assert.rejects(c.request('crash', Buffer.alloc(1)), (err: PeerStreamRefusal) => {
        assert.equal(err.peerCode, 'INTERNAL');
        assert.doesNotMatch(err.message, /secret internals/);
        return true;
      });
      await assert.rejects(c.request('nowhere', Buffer.alloc(1)), /no channel nowhere/);
      assert.ok((await c.request('echo', Buffer.from('ok'))).equals(Buffer.from('ko')), 'the connection goes on');
    } finally {
      c.close();
    }
  });

  it('closes the connection a refusal came over when the caller asks (to reach another replica), and connects again', async () => {
    const c = client();
    const elsewhere = (err: unknown) => err instanceof PeerStreamRefusal && err.peerCode === 'LINK_OWNED_ELSEWHERE';
    try {
      await c.request('echo', Buffer.from('ab'));
      const first = stream.connections()[0];
      // Another refusal keeps the connection.
      await assert.rejects(c.request('refuse', Buffer.alloc(1), 5000, elsewhere), /refused/);
      await c.request('echo', Buffer.from('ab'));
      assert.deepEqual(stream.connections(), [first]);
      await assert.rejects(c.request('elsewhere', Buffer.alloc(1), 5000, elsewhere), elsewhere);
      assert.ok((await c.request('echo', Buffer.from('ab'))).equals(Buffer.from('ba')));
      await sleep(50);
      assert.equal(stream.connections().length, 1);
      assert.notEqual(stream.connections()[0], first, 'a new connection');
    } finally {
      c.close();
    }
  });

  it('times out a request that gets no answer, drops that connection, and the next request reconnects', async () => {
    const c = client('kme-a', 'kme-b', 50);
    try {
      await assert.rejects(c.request('later', Buffer.from([200])), /no answer on later within 50 ms/);
      await sleep(250);
      assert.ok((await c.request('echo', Buffer.from('ab'))).equals(Buffer.from('ba')));
    } finally {
      c.close();
    }
  });

  it('refuses SAE certificates, KMEs that are not configured peers, and a server that is not the peer', async () => {
    const sae = deployment.saes.find((s) => s.kme === 'kme-a')!;
    const saeClient = new PeerStreamClient({
      kmeId: 'kme-b',
      url: `https://127.0.0.1:${port}`,
      tls: { key: readFileSync(sae.key), cert: readFileSync(sae.cert), ca: tlsOf('kme-a').ca },
      log,
    });
    await assert.rejects(saeClient.request('echo', Buffer.alloc(1)), /kme-b is unreachable/);
    saeClient.close();
    const stranger = client('kme-c');
    await assert.rejects(stranger.request('echo', Buffer.alloc(1)), /answered 401/);
    stranger.close();
    const wrongServer = client('kme-a', 'kme-c');
    await assert.rejects(wrongServer.request('echo', Buffer.alloc(1)), /does not belong to KME kme-c/);
    wrongServer.close();
    assert.equal(stream.connections().length, 0);
  });

  it('fails waiting requests when the peer stops, and reconnects once it is back', async () => {
    const c = client();
    try {
      assert.ok((await c.request('echo', Buffer.from('12'))).equals(Buffer.from('21')));
      const waiting = c.request('later', Buffer.from([250]));
      await sleep(30);
      await stopServer();
      await assert.rejects(waiting, /peer KME kme-b: /);
      await assert.rejects(c.request('echo', Buffer.alloc(1)), /unreachable/);
      await startServer();
      assert.ok((await c.request('echo', Buffer.from('34'))).equals(Buffer.from('43')));
    } finally {
      c.close();
    }
  });

  it('tells a request that never left (no connection, upgrade refused) from one that may have arrived', async () => {
    const c = client('kme-a', 'kme-b', 100);
    try {
      await c.request('echo', Buffer.from('up'));
      // Written, then no answer: the peer may have acted on it.
      const late = await c.request('later', Buffer.from([250])).catch((err: unknown) => err);
      assert.ok(late instanceof QksError && !(late instanceof RequestNotSent), String(late));
      await stopServer();
      // Connection refused: certain that nothing left.
      const refused = await c.request('echo', Buffer.alloc(1)).catch((err: unknown) => err);
      assert.ok(refused instanceof RequestNotSent, String(refused));
      await startServer();
    } finally {
      c.close();
    }
    const stranger = client('kme-c');
    const handshake = await stranger.request('echo', Buffer.alloc(1)).catch((err: unknown) => err);
    assert.ok(handshake instanceof RequestNotSent, String(handshake));
    stranger.close();
  });

  it('closes a connection that sends a bad frame, and serves others as before', async () => {
    const raw: TLSSocket = connect({
      host: '127.0.0.1',
      port,
      ...tlsOf('kme-a'),
      servername: 'localhost',
      checkServerIdentity: () => undefined,
    });
    await new Promise((resolve) => raw.once('secureConnect', resolve));
    raw.write('GET /kme/v1/stream HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: qks-peer-stream/1\r\n\r\n');
    let got = '';
    raw.on('data', (d: Buffer) => (got += d.toString('latin1')));
    await sleep(100);
    assert.match(got, /^HTTP\/1\.1 101 /);
    const closed = new Promise((resolve) => raw.once('close', resolve));
    raw.write(Buffer.from([0xff, 0xff, 0xff, 0x7f, 1, 0, 0, 0, 0]));
    await closed;
    const c = client();
    assert.ok((await c.request('echo', Buffer.from('xy'))).equals(Buffer.from('yx')));
    c.close();
  });

  it('a client whose server sends a bad frame fails its requests with the reason', async () => {
    const [badPort] = await freePorts(1);
    const bad = createTlsServer({ ...tlsOf('kme-b'), ...PEER_TLS_OPTIONS }, (socket) => {
      socket.once('data', () => {
        socket.write('HTTP/1.1 101 Switching Protocols\r\nUpgrade: qks-peer-stream/1\r\n\r\n');
        socket.once('data', () => socket.write(Buffer.from([7, 0, 0, 0, 9, 1, 0, 0, 0, 0, 0])));
      });
    });
    await new Promise<void>((resolve) => bad.listen(badPort, '127.0.0.1', resolve));
    const c = new PeerStreamClient({ kmeId: 'kme-b', url: `https://127.0.0.1:${badPort}`, tls: tlsOf('kme-a'), log });
    try {
      await assert.rejects(c.request('echo', Buffer.alloc(1)), /bad frame from the peer: unknown frame kind 9/);
    } finally {
      c.close();
      await new Promise((resolve) => bad.close(resolve));
    }
  });
});
