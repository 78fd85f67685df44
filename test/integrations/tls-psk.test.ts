import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { randomBytes, randomUUID } from 'node:crypto';
import { connect, createServer, type AddressInfo, type Server } from 'node:net';
import { rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { freePorts } from '../../src/cli/ports.js';
import { TunnelClient, TunnelServer } from '../../src/integrations/tls-psk/psk-tunnel.js';
import type { PskMode } from '../../src/integrations/tls-psk/psk-tls.js';
import { KeyRing } from '../../src/sae/key-ring.js';
import { startEcho } from '../helpers/echo-server.js';
import { assertModeOnWire, TlsCapture } from '../helpers/tls-capture.js';
import { Rotation } from '../../src/sae/rotation.js';
import { eventually, startSites, type TwoSites } from '../helpers/two-kmes.js';
import { initiatorFor, responderFor, saeOf } from '../sae/sae-fixture.js';
import { KmeKeys, type AgreedKey } from '../helpers/kme-keys.js';

const local = { host: '127.0.0.1', port: 0 };

const echoServer = startEcho;

/** Sends `data` through a TCP port and resolves with what comes back. */
function roundTrip(port: number, data: Buffer): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const s = connect(port, '127.0.0.1', () => s.write(data));
    const chunks: Buffer[] = [];
    s.on('data', (d: Buffer) => {
      chunks.push(d);
      if (Buffer.concat(chunks).length >= data.length) {
        s.end();
        resolve(Buffer.concat(chunks));
      }
    });
    s.on('error', reject);
    s.on('close', () => resolve(Buffer.concat(chunks)));
  });
}

describe('qks TLS 1.3 PSK tunnel with QKD keys', () => {
  let sites: TwoSites;
  let echo: Server;
  before(async () => {
    sites = await startSites();
    echo = await echoServer();
    const { kme } = saeOf(sites, 'sae-a1');
    await eventually(async () => (await kme.status('sae-b1')).stored_key_count > 50, 30_000);
  });
  after(async () => {
    await sites.stop();
    await new Promise((r) => echo.close(r));
  });

  /** Both ends' key rings, fed by the SAE toolkit's agreement between sae-a1 and sae-b1. */
  async function agreedRings() {
    const responder = responderFor(sites, 'sae-b1', ['sae-a1']);
    const serverRing = new KeyRing();
    responder.on('keys', (a) => a.keys.forEach((k) => serverRing.add(k)));
    const { port } = await responder.listen();
    const initiator = initiatorFor(sites, 'sae-a1', 'sae-b1', port);
    const clientRing = new KeyRing();
    const rotation = new Rotation(() => initiator.agree(1), clientRing, { maxAgeMs: 60_000 });
    await rotation.start();
    await eventually(() => serverRing.current()?.keyId === clientRing.current()?.keyId, 2000);
    return {
      serverRing,
      clientRing,
      rotation,
      stop: async () => {
        rotation.stop();
        initiator.close();
        await responder.close();
      },
    };
  }

  for (const mode of ['psk_ke', 'psk_dhe_ke'] as PskMode[]) {
    it(`carries data both ways in ${mode}, keyed by the agreed key`, async () => {
      const rings = await agreedRings();
      const server = new TunnelServer({
        listen: local,
        target: { host: '127.0.0.1', port: (echo.address() as AddressInfo).port },
        keys: rings.serverRing,
        mode,
      });
      const serverAt = await server.listen();
      const client = new TunnelClient({ listen: local, server: serverAt, keys: rings.clientRing, mode });
      const clientAt = await client.listen();
      const seen: Array<{ keyId: string; mode: PskMode }> = [];
      server.on('connection', (c) => seen.push(c));
      try {
        const data = randomBytes(256 * 1024);
        assert.ok((await roundTrip(clientAt.port, data)).equals(data), 'what went in came back');
        assert.deepEqual(seen, [{ keyId: rings.clientRing.current()!.keyId, mode }]);
      } finally {
        await client.close();
        await server.close();
        await rings.stop();
      }
    });
  }

  it('uses a new key for new connections after rotation, and ends old ones at their maximum age', async () => {
    const rings = await agreedRings();
    const server = new TunnelServer({
      listen: local,
      target: { host: '127.0.0.1', port: (echo.address() as AddressInfo).port },
      keys: rings.serverRing,
      mode: 'psk_ke',
    });
    const serverAt = await server.listen();
    const client = new TunnelClient({
      listen: local,
      server: serverAt,
      keys: rings.clientRing,
      mode: 'psk_ke',
      maxConnectionAgeMs: 400,
    });
    const clientAt = await client.listen();
    const used: string[] = [];
    server.on('connection', (c) => used.push(c.keyId));
    try {
      const first = rings.clientRing.current()!.keyId;
      const long = connect(clientAt.port, '127.0.0.1');
      const closed = new Promise((r) => long.once('close', r));
      await eventually(() => used.length === 1, 30_000);
      await rings.rotation.rotateNow();
      await eventually(() => rings.serverRing.current()?.keyId === rings.clientRing.current()?.keyId, 2000);
      const data = Buffer.from('after rotation');
      assert.ok((await roundTrip(clientAt.port, data)).equals(data));
      assert.equal(used[0], first);
      assert.notEqual(used[1], first, 'the new connection used the new key');
      await closed; // the old connection reached its maximum age and was closed
    } finally {
      await client.close();
      await server.close();
      await rings.stop();
    }
  });

  it('refuses a key the server does not hold', async () => {
    const serverRing = new KeyRing();
    serverRing.add({ keyId: randomUUID(), key: randomBytes(32) });
    const clientRing = new KeyRing();
    clientRing.add({ keyId: randomUUID(), key: randomBytes(32) });
    const server = new TunnelServer({
      listen: local,
      target: { host: '127.0.0.1', port: (echo.address() as AddressInfo).port },
      keys: serverRing,
      mode: 'psk_ke',
    });
    const client = new TunnelClient({ listen: local, server: await server.listen(), keys: clientRing, mode: 'psk_ke' });
    const refused = new Promise((r) => client.once('refused', r));
    try {
      const back = await roundTrip((await client.listen()).port, Buffer.from('secret'));
      assert.equal(back.length, 0, 'nothing got through');
      await refused;
    } finally {
      await client.close();
      await server.close();
      serverRing.clear();
      clientRing.clear();
    }
  });
});

describe('interoperability with OpenSSL', () => {
  // A key that came through two KMEs: the Node side holds one KME's copy, OpenSSL the other's.
  let key: AgreedKey;
  let nodeKey: AgreedKey;
  before(async () => {
    const supply = await KmeKeys.start();
    try {
      ({ master: key, slave: nodeKey } = await supply.next());
    } finally {
      await supply.stop();
    }
  });
  const ring = () => {
    const r = new KeyRing();
    r.add({ keyId: nodeKey.keyId, key: Buffer.from(nodeKey.key) });
    return r;
  };
  const modeFlags = (mode: PskMode, groups: string) =>
    mode === 'psk_ke' ? ['-allow_no_dhe_kex', '-groups', groups] : [];

  /** openssl s_server on the pair's key (PSK only, TLS 1.3), echoing lines reversed. */
  const sServer = (port: number) => [
    's_server',
    '-accept',
    `127.0.0.1:${port}`,
    '-nocert',
    '-psk',
    key.key.toString('hex'),
    '-psk_identity',
    key.keyId,
    '-tls1_3',
    '-ciphersuites',
    'TLS_AES_128_GCM_SHA256',
    '-rev',
  ];

  for (const mode of ['psk_ke', 'psk_dhe_ke'] as PskMode[]) {
    it(`Node tunnel client ↔ openssl s_server (${mode})`, async () => {
      const [port] = await freePorts(1);
      const server = spawn('openssl', [...sServer(port!), '-naccept', '1', ...modeFlags(mode, 'P-256')]);
      // s_server stops when its stdin closes: it stays open until the test kills it.
      const client = new TunnelClient({
        listen: local,
        server: { host: '127.0.0.1', port: port! },
        keys: ring(),
        mode,
      });
      const seen: PskMode[] = [];
      client.on('connection', (c) => seen.push(c.mode));
      const capture = new TlsCapture(port!);
      try {
        // s_server says ACCEPT when it listens (a probe connection would use up its one accept).
        let said = '';
        server.stdout.on('data', (d: Buffer) => (said += d.toString()));
        await eventually(() => said.includes('ACCEPT'), 30_000, 's_server');
        await capture.start();
        const at = await client.listen();
        const reply = await roundTrip(at.port, Buffer.from('olleh\n'));
        assert.equal(reply.toString(), 'hello\n', 's_server reversed the line');
        assertModeOnWire(await capture.stop(), mode);
        assert.deepEqual(seen, [mode], 'the client reported the mode seen on the wire');
      } finally {
        await client.close();
        server.kill();
      }
    });
  }

  /**
   * openssl s_client with `clientFlags` through a Node tunnel server configured for `mode`: the
   * mode the server reports must be the one the wire shows.
   */
  async function sClientToServer(mode: PskMode, clientFlags: string[], expected: PskMode) {
    const target = await echoServer();
    const server = new TunnelServer({
      listen: local,
      target: { host: '127.0.0.1', port: (target.address() as AddressInfo).port },
      keys: ring(),
      mode,
    });
    const at = await server.listen();
    const seen: PskMode[] = [];
    server.on('connection', (c) => seen.push(c.mode));
    const capture = new TlsCapture(at.port);
    await capture.start();
    const client = spawn('openssl', [
      's_client',
      '-connect',
      `127.0.0.1:${at.port}`,
      '-tls1_3',
      '-psk',
      key.key.toString('hex'),
      '-psk_identity',
      key.keyId,
      '-ciphersuites',
      'TLS_AES_128_GCM_SHA256',
      '-quiet',
      ...clientFlags,
    ]);
    try {
      let out = '';
      client.stdout.on('data', (d: Buffer) => (out += d.toString()));
      client.stdin.write('ping through the tunnel\n');
      await eventually(() => out.includes('ping through the tunnel'), 30_000, 'the echo');
      assertModeOnWire(await capture.stop(), expected);
      assert.deepEqual(seen, [expected], 'the server reported the mode seen on the wire');
    } finally {
      client.kill();
      await server.close();
      await new Promise((r) => target.close(r));
    }
  }

  for (const mode of ['psk_ke', 'psk_dhe_ke'] as PskMode[]) {
    it(`openssl s_client ↔ Node tunnel server (${mode}), on the wire`, async () => {
      await sClientToServer(mode, modeFlags(mode, 'X25519'), mode);
    });
  }

  it('a psk_ke server reports psk_dhe_ke when a client offering both modes gets (EC)DHE', async () => {
    // The client offers psk_ke and psk_dhe_ke and supports P-256: OpenSSL asks for a P-256 share
    // (HelloRetryRequest) and does ECDHE. Stronger than configured, so accepted, and reported as it is.
    await sClientToServer('psk_ke', ['-allow_no_dhe_kex', '-groups', 'X25519:P-256'], 'psk_dhe_ke');
  });

  /**
   * A Node tunnel client in `mode` against an s_server with `flags`: what the client saw, once
   * s_server has said `serverSays` (its reason for a refusal), if given.
   */
  async function clientAgainst(mode: PskMode, flags: string[], at: { serverSays?: string; port?: number } = {}) {
    const { serverSays } = at;
    const port = at.port ?? (await freePorts(1))[0];
    const server = spawn('openssl', [...sServer(port!), ...flags]);
    const client = new TunnelClient({ listen: local, server: { host: '127.0.0.1', port: port! }, keys: ring(), mode });
    const connected: PskMode[] = [];
    const refused: string[] = [];
    client.on('connection', (c) => connected.push(c.mode));
    client.on('refused', (r) => refused.push(r.reason));
    try {
      let said = '';
      server.stdout.on('data', (d: Buffer) => (said += d.toString()));
      server.stderr.on('data', (d: Buffer) => (said += d.toString()));
      await eventually(() => said.includes('ACCEPT'), 30_000, 's_server');
      const at = await client.listen();
      const reply = await roundTrip(at.port, Buffer.from('olleh\n'));
      if (serverSays) await eventually(() => said.includes(serverSays), 30_000, 's_server to say why');
      return { reply, connected, refused };
    } finally {
      await client.close();
      server.kill();
    }
  }

  it('a psk_ke client offers psk_ke alone and no key share: an s_server with X25519 answers psk_ke, on the wire', async () => {
    // The server allows psk_ke and has X25519 (OpenSSL's own first choice): offered a key share it
    // would take (EC)DHE. Offered none, and psk_ke only, it can only answer psk_ke.
    const [port] = await freePorts(1);
    const capture = new TlsCapture(port!);
    await capture.start();
    const { reply, connected, refused } = await clientAgainst('psk_ke', ['-allow_no_dhe_kex', '-groups', 'X25519'], {
      port: port!,
    });
    assert.equal(reply.toString(), 'hello\n', 's_server reversed the line');
    assert.deepEqual(connected, ['psk_ke']);
    assert.deepEqual(refused, []);
    const wire = await capture.stop();
    assert.deepEqual(wire.offeredModes, [[0]], 'the ClientHello offered psk_ke only');
    assert.deepEqual(wire.clientHellos, [{ keyShare: false, supportedGroups: false }], 'no key share, no groups');
    assertModeOnWire(wire, 'psk_ke');
  });

  it('a psk_ke client gets no handshake from an s_server that does not allow psk_ke', async () => {
    // Without -allow_no_dhe_kex OpenSSL needs a key share: it refuses the offer (missing_extension).
    const { reply, connected, refused } = await clientAgainst('psk_ke', ['-groups', 'X25519:P-256'], {
      serverSays: 'missing',
    });
    assert.equal(reply.length, 0, 'nothing came back: the application saw its connection closed');
    assert.deepEqual(connected, [], 'no connection in a stronger mode than asked either');
    assert.equal(refused.length, 1);
    assert.match(refused[0]!, new RegExp(`^TLS handshake under key ${nodeKey.keyId} failed: .*alert 109`));
  });

  it('a psk_dhe_ke client drops a server that can only do psk_ke', async () => {
    // Allowed psk_ke, and no (EC)DHE group usable in TLS 1.3: this server cannot do psk_dhe_ke.
    const flags = ['-allow_no_dhe_kex', '-groups', 'secp224r1'];
    const { reply, connected, refused } = await clientAgainst('psk_dhe_ke', flags, {
      serverSays: 'no suitable key share',
    });
    assert.equal(reply.length, 0, 'nothing came back: the application saw its connection closed');
    assert.deepEqual(connected, [], 'no connection in a weaker mode');
    assert.equal(refused.length, 1);
  });
});

describe('refusals', () => {
  let echo: Server;
  before(async () => {
    echo = await echoServer();
  });
  after(() => new Promise((r) => echo.close(r)));
  const target = () => ({ host: '127.0.0.1', port: (echo.address() as AddressInfo).port });

  it('refuses a stale key once the server has retired it, and another pair’s key', async () => {
    const old = { keyId: randomUUID(), key: randomBytes(32) };
    const other = { keyId: randomUUID(), key: randomBytes(32) };
    const serverRing = new KeyRing();
    serverRing.add({ keyId: old.keyId, key: Buffer.from(old.key) });
    serverRing.add({ keyId: randomUUID(), key: randomBytes(32) }); // the next key
    serverRing.retire(old.keyId); // the grace period of the old key is over
    const server = new TunnelServer({ listen: local, target: target(), keys: serverRing, mode: 'psk_ke' });
    const at = await server.listen();
    try {
      for (const k of [old, other]) {
        const ring = new KeyRing();
        ring.add({ keyId: k.keyId, key: Buffer.from(k.key) });
        const client = new TunnelClient({ listen: local, server: at, keys: ring, mode: 'psk_ke' });
        const back = await roundTrip((await client.listen()).port, Buffer.from('data'));
        assert.equal(back.length, 0);
        await client.close();
      }
    } finally {
      await server.close();
      serverRing.clear();
    }
  });

  it('gives openssl s_client no session to resume', async () => {
    const key = { keyId: randomUUID(), key: randomBytes(32) };
    const ring = new KeyRing();
    ring.add(key);
    const server = new TunnelServer({ listen: local, target: target(), keys: ring, mode: 'psk_dhe_ke' });
    const at = await server.listen();
    const session = join(tmpdir(), `qks-session-${key.keyId}.pem`);
    const sClient = (extra: string[]) =>
      new Promise<string>((resolve) => {
        const c = spawn('openssl', [
          's_client',
          '-connect',
          `127.0.0.1:${at.port}`,
          '-tls1_3',
          '-psk',
          key.key.toString('hex'),
          '-psk_identity',
          key.keyId,
          '-ciphersuites',
          'TLS_AES_128_GCM_SHA256',
          ...extra,
        ]);
        let out = '';
        c.stdout.on('data', (d: Buffer) => (out += d.toString()));
        c.stdin.write('x\n');
        setTimeout(() => c.stdin.end(), 500);
        c.on('exit', () => resolve(out));
      });
    const used: string[] = [];
    const refused: string[] = [];
    server.on('connection', (c) => used.push(c.keyId));
    server.on('refused', (r) => refused.push(r.reason));
    try {
      await sClient(['-sess_out', session]);
      await sClient(['-sess_in', session]);
      // Both connections were keyed by the external PSK (OpenSSL calls any PSK handshake "Reused").
      assert.deepEqual(used, [key.keyId, key.keyId], 'no connection resumed an earlier session');
      assert.deepEqual(refused, []);
    } finally {
      rmSync(session, { force: true });
      await server.close();
    }
  });
});

describe('half-close through the tunnel', () => {
  it('lets the application finish sending and still read the answer', async () => {
    // A service that answers only once the request has ended, as HTTP/1.0 or `nc -N` expect.
    const counter = createServer({ allowHalfOpen: true }, (s) => {
      let n = 0;
      s.on('data', (d: Buffer) => (n += d.length));
      s.on('end', () => s.end(`received ${n}`));
      s.on('error', () => s.destroy());
    });
    await new Promise<void>((r) => counter.listen(0, '127.0.0.1', r));
    const key = { keyId: randomUUID(), key: randomBytes(32) };
    const ring = () => {
      const r = new KeyRing();
      r.add({ keyId: key.keyId, key: Buffer.from(key.key) });
      return r;
    };
    const server = new TunnelServer({
      listen: local,
      target: { host: '127.0.0.1', port: (counter.address() as AddressInfo).port },
      keys: ring(),
      mode: 'psk_ke',
    });
    const client = new TunnelClient({ listen: local, server: await server.listen(), keys: ring(), mode: 'psk_ke' });
    const at = await client.listen();
    try {
      const answer = await new Promise<string>((resolve, reject) => {
        const s = connect({ port: at.port, host: '127.0.0.1', allowHalfOpen: true }, () => s.end(randomBytes(300_000)));
        let text = '';
        s.on('data', (d: Buffer) => (text += d.toString()));
        s.on('end', () => resolve(text));
        s.on('error', reject);
      });
      assert.equal(answer, 'received 300000');
    } finally {
      await client.close();
      await server.close();
      await new Promise((r) => counter.close(r));
    }
  });
});
