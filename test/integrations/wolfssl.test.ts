import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { type AddressInfo, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { PskMode } from '../../src/integrations/tls-psk/psk-tls.js';
import { TunnelServer } from '../../src/integrations/tls-psk/psk-tunnel.js';
import { KeyRing } from '../../src/sae/key-ring.js';
import { startEcho } from '../helpers/echo-server.js';
import { assertModeOnWire, TlsCapture } from '../helpers/tls-capture.js';
import { KmeKeys, type AgreedKey } from '../helpers/kme-keys.js';
import { buildWolfsslPeer } from '../helpers/wolfssl-peers.js';

/**
 * A wolfSSL client (built here from test/peers/wolfssl-psk-client.c) against the Node tunnel server.
 * The other direction, the Node tunnel client against a wolfSSL server, is wolfssl-server.test.ts.
 */
describe('interoperability with a wolfSSL client', () => {
  const dir = mkdtempSync(join(tmpdir(), 'qks-wolfssl-'));
  let binary: string;
  let echo: Server;
  // A key that came through two KMEs: the client (wolfSSL) holds the master's copy, the server the slave's.
  let key: AgreedKey;
  let serverKey: AgreedKey;

  before(async () => {
    binary = buildWolfsslPeer('wolfssl-psk-client', dir);
    echo = await startEcho();
    const supply = await KmeKeys.start();
    try {
      ({ master: key, slave: serverKey } = await supply.next());
    } finally {
      await supply.stop();
    }
  });
  after(async () => {
    await new Promise((r) => echo.close(r));
    rmSync(dir, { recursive: true, force: true });
  });

  async function serverFor(mode: PskMode) {
    const ring = new KeyRing();
    ring.add({ keyId: serverKey.keyId, key: Buffer.from(serverKey.key) });
    const server = new TunnelServer({
      listen: { host: '127.0.0.1', port: 0 },
      target: { host: '127.0.0.1', port: (echo.address() as AddressInfo).port },
      keys: ring,
      mode,
    });
    return { server, at: await server.listen() };
  }
  const wolf = (port: number, clientMode: PskMode, message: string) =>
    new Promise<{ code: number; out: string; err: string }>((resolve) =>
      execFile(
        binary,
        ['127.0.0.1', String(port), key.keyId, key.key.toString('hex'), clientMode, message],
        (e, out, err) => resolve({ code: e ? ((e as { code?: number }).code ?? 1) : 0, out, err }),
      ),
    );

  it('a pure psk_ke client (wolfSSL_CTX_no_dhe_psk) gets psk_ke, on the wire', async () => {
    const { server, at } = await serverFor('psk_ke');
    const reported: PskMode[] = [];
    server.on('connection', (c) => reported.push(c.mode));
    const capture = new TlsCapture(at.port);
    await capture.start();
    try {
      const run = await wolf(at.port, 'psk_ke', 'quantum-safe hello');
      assert.equal(run.code, 0, run.err);
      assert.equal(run.out.trim(), 'quantum-safe hello');
      const evidence = await capture.stop();
      assert.deepEqual(evidence.offeredModes, [[0]], 'the client offered psk_ke only');
      assert.deepEqual(evidence.serverHellos, [{ keyShare: false, preSharedKey: true }]);
      assert.deepEqual(reported, ['psk_ke'], 'the server reported psk_ke');
    } finally {
      await server.close();
    }
  });

  it('a psk_dhe_ke client gets psk_dhe_ke, on the wire and in the server’s report', async () => {
    const { server, at } = await serverFor('psk_dhe_ke');
    const reported: PskMode[] = [];
    server.on('connection', (c) => reported.push(c.mode));
    const capture = new TlsCapture(at.port);
    await capture.start();
    try {
      const run = await wolf(at.port, 'psk_dhe_ke', 'hybrid hello');
      assert.equal(run.code, 0, run.err);
      assert.equal(run.out.trim(), 'hybrid hello');
      const evidence = await capture.stop();
      assert.ok(
        evidence.offeredModes.every((m) => m.includes(1)),
        'the client offered psk_dhe_ke',
      );
      assertModeOnWire(evidence, 'psk_dhe_ke');
      assert.deepEqual(reported, ['psk_dhe_ke']);
    } finally {
      await server.close();
    }
  });

  it('a psk_ke-only client cannot downgrade a psk_dhe_ke server', async () => {
    const { server, at } = await serverFor('psk_dhe_ke');
    const refused: string[] = [];
    server.on('refused', (r) => refused.push(r.reason));
    try {
      const run = await wolf(at.port, 'psk_ke', 'downgrade?');
      assert.notEqual(run.code, 0, 'the handshake failed');
      assert.doesNotMatch(run.out, /downgrade\?/);
      assert.deepEqual(refused, ['client offers psk_ke only, weaker than psk_dhe_ke']);
    } finally {
      await server.close();
    }
  });
});
