import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { PskMode } from '../../src/integrations/tls-psk/psk-tls.js';
import { TunnelClient } from '../../src/integrations/tls-psk/psk-tunnel.js';
import { KeyRing } from '../../src/sae/key-ring.js';
import { roundTrip } from '../helpers/echo-server.js';
import { KmeKeys, type AgreedKey } from '../helpers/kme-keys.js';
import { assertModeOnWire, TlsCapture } from '../helpers/tls-capture.js';
import { eventually } from '../helpers/two-kmes.js';
import { buildWolfsslPeer, startWolfsslServer } from '../helpers/wolfssl-peers.js';

const local = { host: '127.0.0.1', port: 0 };

/**
 * The Node tunnel client against a wolfSSL server (built here from test/peers/wolfssl-psk-server.c,
 * a separate process that echoes what it reads). Keys came through two KMEs: the tunnel client
 * holds the master's copy, the wolfSSL server the slave's.
 */
describe('interoperability with a wolfSSL server', () => {
  const dir = mkdtempSync(join(tmpdir(), 'qks-wolfssl-server-'));
  let binary: string;
  let key: AgreedKey;
  let serverKey: AgreedKey;
  /** A second agreed key, which the wolfSSL server does not hold. */
  let otherKey: AgreedKey;

  before(async () => {
    binary = buildWolfsslPeer('wolfssl-psk-server', dir);
    const supply = await KmeKeys.start();
    try {
      ({ master: key, slave: serverKey } = await supply.next());
      ({ master: otherKey } = await supply.next());
    } finally {
      await supply.stop();
    }
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  /**
   * The tunnel client in `clientMode` with `clientKey`, against a wolfSSL server in `serverMode`
   * holding the server's copy of the agreed key: one round trip, captured on the wire.
   */
  async function run(clientMode: PskMode, serverMode: PskMode, clientKey: AgreedKey = key) {
    const server = await startWolfsslServer(binary, serverKey, serverMode);
    const ring = new KeyRing();
    ring.add({ keyId: clientKey.keyId, key: Buffer.from(clientKey.key) });
    const client = new TunnelClient({
      listen: local,
      server: { host: '127.0.0.1', port: server.port },
      keys: ring,
      mode: clientMode,
    });
    const connected: PskMode[] = [];
    const refused: string[] = [];
    client.on('connection', (c) => connected.push(c.mode));
    client.on('refused', (r) => refused.push(r.reason));
    const capture = new TlsCapture(server.port);
    let capturing = false;
    try {
      await capture.start();
      capturing = true;
      const at = await client.listen();
      const reply = (await roundTrip(at.port, Buffer.from('quantum-safe hello'))).toString();
      // The server's line for this connection (written before its reply, or when it gives up).
      await eventually(() => server.said().length > 0, 10_000, 'the wolfSSL server to report the connection');
      if (connected.length === 0) await eventually(() => refused.length > 0, 10_000, 'the tunnel to report a refusal');
      capturing = false;
      return { reply, connected, refused, said: server.said(), wire: await capture.stop() };
    } finally {
      if (capturing) await capture.stop(); // after a failure: no tshark left running
      await client.close();
      await server.stop();
      ring.clear();
    }
  }

  it('psk_ke: the tunnel client gets psk_ke from a wolfSSL server that never uses (EC)DHE, on the wire', async () => {
    const { reply, connected, refused, said, wire } = await run('psk_ke', 'psk_ke');
    assert.equal(reply, 'quantum-safe hello', 'the wolfSSL server echoed the data through the tunnel');
    assert.deepEqual(wire.serverHellos, [{ keyShare: false, preSharedKey: true }]);
    assertModeOnWire(wire, 'psk_ke');
    assert.deepEqual(connected, ['psk_ke'], 'the tunnel client reported psk_ke');
    assert.deepEqual(refused, []);
    assert.equal(said, `connection: identity ${key.keyId}, key exchange none\n`, 'wolfSSL used the PSK alone');
  });

  it('psk_dhe_ke: the tunnel client gets psk_dhe_ke (X25519) from a wolfSSL server, on the wire', async () => {
    const { reply, connected, refused, said, wire } = await run('psk_dhe_ke', 'psk_dhe_ke');
    assert.equal(reply, 'quantum-safe hello');
    assert.deepEqual(wire.offeredModes, [[1]], 'the client offered psk_dhe_ke only');
    assertModeOnWire(wire, 'psk_dhe_ke');
    assert.deepEqual(connected, ['psk_dhe_ke'], 'the tunnel client reported psk_dhe_ke');
    assert.deepEqual(refused, []);
    assert.equal(said, `connection: identity ${key.keyId}, key exchange X25519\n`);
  });

  it('a psk_ke tunnel client gets psk_ke from a wolfSSL server that would take (EC)DHE: it offers no key share', async () => {
    // This server allows both modes and prefers (EC)DHE; the client offers psk_ke alone, no key_share.
    const { reply, connected, refused, said, wire } = await run('psk_ke', 'psk_dhe_ke');
    assert.equal(reply, 'quantum-safe hello');
    assert.deepEqual(wire.offeredModes, [[0]], 'the client offered psk_ke only');
    assert.deepEqual(wire.clientHellos, [{ keyShare: false, supportedGroups: false }], 'no key share, no groups');
    assertModeOnWire(wire, 'psk_ke');
    assert.deepEqual(connected, ['psk_ke']);
    assert.deepEqual(refused, []);
    assert.equal(said, `connection: identity ${key.keyId}, key exchange none\n`, 'wolfSSL used the PSK alone');
  });

  it('a psk_dhe_ke tunnel client gets no handshake from a wolfSSL server that never uses (EC)DHE', async () => {
    // The client offers psk_dhe_ke only; this server takes psk_ke only: it refuses (illegal_parameter).
    const { reply, connected, refused, said } = await run('psk_dhe_ke', 'psk_ke');
    assert.equal(reply, '', 'nothing came back: the application saw its connection closed');
    assert.deepEqual(connected, [], 'no connection in a weaker mode');
    assert.equal(said, 'handshake failed: psk key callback error\n');
    assert.equal(refused.length, 1);
    assert.match(refused[0]!, new RegExp(`^TLS handshake under key ${key.keyId} failed: .*illegal parameter`));
  });

  it('refuses another key ID: the tunnel reports it, and then carries data on the agreed key', async (t) => {
    const server = await startWolfsslServer(binary, serverKey, 'psk_ke');
    const ring = new KeyRing();
    ring.add({ keyId: otherKey.keyId, key: Buffer.from(otherKey.key) });
    const client = new TunnelClient({
      listen: local,
      server: { host: '127.0.0.1', port: server.port },
      keys: ring,
      mode: 'psk_ke',
    });
    const connected: string[] = [];
    const refused: string[] = [];
    client.on('connection', (c) => connected.push(c.keyId));
    client.on('refused', (r) => refused.push(r.reason));
    try {
      const at = await client.listen();
      const refusedReply = await roundTrip(at.port, Buffer.from('not with that key'));
      assert.equal(refusedReply.length, 0, 'nothing came back: the application saw its connection closed');
      await eventually(() => refused.length > 0, 10_000, 'the tunnel to report the refusal');
      // wolfSSL 5.5.4 falls back to a full handshake, which needs a key share: missing_extension (109).
      assert.deepEqual(refused, [
        `TLS handshake under key ${otherKey.keyId} failed: the server refused the handshake (alert 109)`,
      ]);
      t.diagnostic(`tunnel client: ${refused[0]}`);
      assert.ok(server.said().startsWith(`unknown PSK identity ${otherKey.keyId}\n`), 'the wolfSSL server had no key');
      assert.deepEqual(connected, []);

      // Neither side is harmed: the same tunnel client, given the agreed key, reaches the same server.
      ring.add({ keyId: key.keyId, key: Buffer.from(key.key) });
      const reply = await roundTrip(at.port, Buffer.from('with the agreed key'));
      assert.equal(reply.toString(), 'with the agreed key');
      assert.deepEqual(connected, [key.keyId]);
      assert.equal(refused.length, 1);
      assert.match(server.said(), new RegExp(`\nconnection: identity ${key.keyId}, key exchange none\n$`));
    } finally {
      await client.close();
      await server.stop();
      ring.clear();
    }
  });

  it('refuses the right key ID with other key bytes (the binder does not verify)', async () => {
    const wrong = { keyId: key.keyId, key: otherKey.key };
    const { reply, connected, refused, said } = await run('psk_dhe_ke', 'psk_dhe_ke', wrong);
    assert.equal(reply, '');
    assert.deepEqual(connected, []);
    assert.equal(said, 'handshake failed: binder does not verify\n');
    assert.deepEqual(refused, [
      `TLS handshake under key ${key.keyId} failed: ` +
        'Client network socket disconnected before secure TLS connection was established',
    ]);
  });
});
