import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import type { AddressInfo, Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { freePorts, portAnswers } from '../../src/cli/ports.js';
import { StunnelManager } from '../../src/integrations/stunnel/stunnel-manager.js';
import type { PskMode } from '../../src/integrations/tls-psk/psk-tls.js';
import { TunnelClient, TunnelServer } from '../../src/integrations/tls-psk/psk-tunnel.js';
import { KeyRing } from '../../src/sae/key-ring.js';
import { roundTrip, startEcho } from '../helpers/echo-server.js';
import { assertModeOnWire, TlsCapture } from '../helpers/tls-capture.js';
import { KmeKeys } from '../helpers/kme-keys.js';
import { eventually } from '../helpers/two-kmes.js';

const local = (port = 0) => ({ host: '127.0.0.1', port });

let supply: KmeKeys;

/** The same keys on both sides, as the SAE toolkit's agreement leaves them: each came through two KMEs. */
async function twinRings(): Promise<[KeyRing, KeyRing, () => Promise<void>]> {
  const a = new KeyRing();
  const b = new KeyRing();
  const add = async () => {
    const { master, slave } = await supply.next();
    a.add(master);
    b.add(slave);
  };
  await add();
  return [a, b, add];
}

describe('real stunnel, driven by qks', () => {
  let echo: Server;
  const dir = mkdtempSync(join(tmpdir(), 'qks-stunnel-'));
  before(async () => {
    echo = await startEcho();
    supply = await KmeKeys.start();
  });
  after(async () => {
    await supply.stop();
    await new Promise((r) => echo.close(r));
    rmSync(dir, { recursive: true, force: true });
  });
  const echoAt = () => local((echo.address() as AddressInfo).port);

  for (const mode of ['psk_ke', 'psk_dhe_ke'] as PskMode[]) {
    it(`Node tunnel client → stunnel server (${mode}), then a rotated key after SIGHUP`, async () => {
      const [ours, theirs, rotate] = await twinRings();
      const [port] = await freePorts(1);
      const stunnel = new StunnelManager({
        role: 'server',
        dir: join(dir, `server-${mode}`),
        accept: local(port),
        connect: echoAt(),
        keys: theirs,
        mode,
      });
      stunnel.start();
      const client = new TunnelClient({ listen: local(), server: local(port), keys: ours, mode });
      const seen: PskMode[] = [];
      client.on('connection', (c) => seen.push(c.mode));
      try {
        await eventually(() => portAnswers(port!), 5000, 'stunnel');
        const at = await client.listen();
        const data = randomBytes(64 * 1024);
        assert.ok((await roundTrip(at.port, data)).equals(data));
        await rotate(); // both rings get the next key; stunnel is sent SIGHUP with the new secrets
        await new Promise((r) => setTimeout(r, 500));
        assert.ok((await roundTrip(at.port, data)).equals(data), 'the new key works after the reload');
        assert.deepEqual(seen, [mode, mode]);
        assert.match(
          readFileSync(stunnel.logFile, 'utf8'),
          new RegExp(`Key configured for PSK identity "${ours.current()!.keyId}"`),
        );
        assert.equal(statSync(stunnel.secretsFile).mode & 0o777, 0o600);
        assert.match(stunnel.config(), /options = NO_TICKET/);
      } finally {
        await client.close();
        await stunnel.stop();
      }
    });

    it(`stunnel client → Node tunnel server (${mode})`, async () => {
      const [ours, theirs] = await twinRings();
      const server = new TunnelServer({ listen: local(), target: echoAt(), keys: ours, mode });
      const at = await server.listen();
      const [port] = await freePorts(1);
      const stunnel = new StunnelManager({
        role: 'client',
        dir: join(dir, `client-${mode}`),
        accept: local(port),
        connect: at,
        keys: theirs,
        mode,
      });
      const used: string[] = [];
      const modes: PskMode[] = [];
      server.on('connection', (c) => {
        used.push(c.keyId);
        modes.push(c.mode);
      });
      stunnel.start();
      const capture = new TlsCapture(at.port);
      try {
        await eventually(() => portAnswers(port!), 5000, 'stunnel');
        await capture.start();
        const probes = used.length; // portAnswers' probe went through to this server too
        const data = randomBytes(64 * 1024);
        assert.ok((await roundTrip(port!, data)).equals(data));
        assert.ok(used.includes(theirs.current()!.keyId), 'stunnel used the agreed key as its PSK identity');
        assertModeOnWire(await capture.stop(), mode, used.length - probes);
        assert.deepEqual(new Set(modes), new Set([mode]), 'the server reported the mode seen on the wire');
      } finally {
        await stunnel.stop();
        await server.close();
      }
    });
  }

  it('a wrong key gets nothing through stunnel', async () => {
    const [, theirs] = await twinRings();
    const stranger = new KeyRing();
    stranger.add({ keyId: theirs.current()!.keyId, key: randomBytes(32) }); // right identity, wrong bytes
    const [port] = await freePorts(1);
    const stunnel = new StunnelManager({
      role: 'server',
      dir: join(dir, 'wrong'),
      accept: local(port),
      connect: echoAt(),
      keys: theirs,
      mode: 'psk_ke',
    });
    stunnel.start();
    const client = new TunnelClient({ listen: local(), server: local(port), keys: stranger, mode: 'psk_ke' });
    try {
      await eventually(() => portAnswers(port!), 5000, 'stunnel');
      const back = await roundTrip((await client.listen()).port, Buffer.from('secret'));
      assert.equal(back.length, 0);
    } finally {
      await client.close();
      await stunnel.stop();
    }
  });
});
