import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { connect, type AddressInfo, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { freePorts, portAnswers } from '../../src/cli/ports.js';
import { StunnelManager } from '../../src/integrations/stunnel/stunnel-manager.js';
import type { PskMode } from '../../src/integrations/tls-psk/psk-tls.js';
import { TunnelClient, TunnelServer } from '../../src/integrations/tls-psk/psk-tunnel.js';
import { KeyRing } from '../../src/sae/key-ring.js';
import { TlsCapture } from '../helpers/tls-capture.js';
import { startEcho } from '../helpers/echo-server.js';
import { KmeKeys } from '../helpers/kme-keys.js';
import { eventually } from '../helpers/two-kmes.js';

const local = (port = 0) => ({ host: '127.0.0.1', port });
const send = (port: number) =>
  new Promise<void>((resolve) => {
    const s = connect(port, '127.0.0.1', () => s.end('x'));
    s.on('data', () => undefined);
    s.on('close', () => resolve());
    s.on('error', () => resolve());
  });

/** The mode is proven from the handshake on the wire (tshark), not from our own logs. */
describe('negotiated PSK mode, seen on the wire', () => {
  let echo: Server;
  let supply: KmeKeys;
  const dir = mkdtempSync(join(tmpdir(), 'qks-wire-'));
  const ring = (k: { keyId: string; key: Buffer }) => {
    const r = new KeyRing();
    r.add({ keyId: k.keyId, key: Buffer.from(k.key) });
    return r;
  };
  before(async () => {
    echo = await startEcho();
    supply = await KmeKeys.start();
  });
  after(async () => {
    await supply.stop();
    await new Promise((r) => echo.close(r));
    rmSync(dir, { recursive: true, force: true });
  });

  const expectMode = (evidence: Awaited<ReturnType<TlsCapture['stop']>>, mode: PskMode) => {
    assert.ok(evidence.serverHellos.length >= 1, 'a ServerHello was captured');
    for (const hello of evidence.serverHellos) {
      assert.equal(hello.preSharedKey, true, 'the server selected the external PSK');
      assert.equal(
        hello.keyShare,
        mode === 'psk_dhe_ke',
        mode === 'psk_ke' ? 'no key_share: psk_ke' : 'key_share: psk_dhe_ke',
      );
    }
  };

  for (const mode of ['psk_ke', 'psk_dhe_ke'] as PskMode[]) {
    it(`Node tunnel ↔ Node tunnel: ${mode}`, async () => {
      const { master: key, slave } = await supply.next();
      const [port] = await freePorts(1);
      const server = new TunnelServer({
        listen: local(port),
        target: local((echo.address() as AddressInfo).port),
        keys: ring(slave),
        mode,
      });
      await server.listen();
      const reported: PskMode[] = [];
      server.on('connection', (c) => reported.push(c.mode));
      const client = new TunnelClient({ listen: local(), server: local(port), keys: ring(key), mode });
      const capture = new TlsCapture(port!);
      await capture.start();
      try {
        await send((await client.listen()).port);
        const evidence = await capture.stop();
        expectMode(evidence, mode);
        assert.deepEqual(reported, [mode], 'the server reported the mode seen on the wire');
        assert.ok(evidence.offeredModes[0]!.includes(mode === 'psk_ke' ? 0 : 1));
      } finally {
        await client.close();
        await server.close();
      }
    });

    it(`Node tunnel client ↔ stunnel server: ${mode}`, async () => {
      const { master: key, slave } = await supply.next();
      const [port] = await freePorts(1);
      const stunnel = new StunnelManager({
        role: 'server',
        dir: join(dir, mode),
        accept: local(port),
        connect: local((echo.address() as AddressInfo).port),
        keys: ring(slave),
        mode,
      });
      await stunnel.start();
      const client = new TunnelClient({ listen: local(), server: local(port), keys: ring(key), mode });
      try {
        await eventually(() => portAnswers(port!), 5000, 'stunnel');
        const capture = new TlsCapture(port!);
        await capture.start();
        await send((await client.listen()).port);
        expectMode(await capture.stop(), mode);
      } finally {
        await client.close();
        await stunnel.stop();
      }
    });
  }
});
