import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { connect, type AddressInfo, type Server } from 'node:net';
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
      await stunnel.start();
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
      await stunnel.start();
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

  it('a client whose key expired with no successor keeps running, with no retired key on disk and no tunnel', async () => {
    const [ours] = await twinRings();
    const keyId = ours.current()!.keyId;
    const [port] = await freePorts(1);
    const stunnel = new StunnelManager({
      role: 'client',
      dir: join(dir, 'expired'),
      accept: local(port),
      connect: echoAt(),
      keys: ours,
      mode: 'psk_ke',
    });
    const exits: unknown[] = [];
    stunnel.on('exited', (e) => exits.push(e));
    await stunnel.start();
    try {
      // Running and serving before the key goes (a start's own races are another test's).
      const log = () => (existsSync(stunnel.logFile) ? readFileSync(stunnel.logFile, 'utf8') : '');
      await eventually(() => log().includes('Configuration successful'), 10_000, 'stunnel started');
      const pid = stunnel.pid;
      ours.expireCurrent();
      ours.retire(keyId);
      assert.doesNotMatch(readFileSync(stunnel.secretsFile, 'utf8'), new RegExp(keyId), 'the retired key is gone');
      assert.match(readFileSync(stunnel.configFile, 'utf8'), /PSKidentity = qks-no-key-yet/);
      await new Promise((r) => setTimeout(r, 1000));
      assert.deepEqual(exits, []);
      assert.equal(stunnel.pid, pid, 'the same stunnel, reloaded');
    } finally {
      await stunnel.stop();
    }
  });

  it('issue 17: a key that comes while stunnel is starting is loaded once it can be, and does not end it', async () => {
    const [ours, theirs] = await twinRings();
    const { master, slave } = await supply.next(); // fetched first: it must arrive during the start
    const [port] = await freePorts(1);
    const stunnel = new StunnelManager({
      role: 'server',
      dir: join(dir, 'early-key'),
      accept: local(port),
      connect: echoAt(),
      keys: theirs,
      mode: 'psk_ke',
      restartDelayMs: 60_000,
    });
    const exits: unknown[] = [];
    stunnel.on('exited', (e) => exits.push(e));
    await stunnel.start();
    const pid = stunnel.pid;
    // stunnel installs its SIGHUP handler last; before, SIGHUP ended it (and the supervisor
    // restarted it a second later, to be ended again by the next key).
    theirs.add(slave);
    ours.add(master);
    const client = new TunnelClient({ listen: local(), server: local(port), keys: ours, mode: 'psk_ke' });
    try {
      const at = await client.listen();
      const data = randomBytes(1024);
      await eventually(async () => (await roundTrip(at.port, data)).equals(data), 10_000, 'the new key to work');
      assert.deepEqual(exits, []);
      assert.equal(stunnel.pid, pid, 'the same stunnel, reloaded');
    } finally {
      await client.close();
      await stunnel.stop();
    }
  });

  it('issue 17: connections that arrive while stunnel reloads are served, neither refused nor reset', async () => {
    const ours = new KeyRing();
    const theirs = new KeyRing();
    // Keys for a rotation every 100 ms, fetched beforehand (each takes longer than that here).
    const pairs = await Promise.all(Array.from({ length: 32 }, () => supply.next()));
    const next = async () => {
      const { master, slave } = pairs.shift()!;
      theirs.add(slave); // the server side first, as an agreement delivers them
      await new Promise((r) => setTimeout(r, 20));
      ours.add(master);
    };
    await next();
    const [tlsPort, plainPort] = await freePorts(2);
    const common = { mode: 'psk_dhe_ke', logLevel: 'notice' } as const;
    const server = new StunnelManager({
      role: 'server',
      dir: join(dir, 'reloads-server'),
      accept: local(tlsPort),
      connect: echoAt(),
      keys: theirs,
      ...common,
    });
    const client = new StunnelManager({
      role: 'client',
      dir: join(dir, 'reloads-client'),
      accept: local(plainPort),
      connect: local(tlsPort),
      keys: ours,
      ...common,
    });
    await server.start();
    await client.start();
    let rotating = true;
    let rotations = 0;
    const rotate = (async () => {
      for (; rotating && pairs.length > 0; rotations++) {
        await next(); // each new key: both stunnels rewritten and sent SIGHUP
        await new Promise((r) => setTimeout(r, 80));
      }
    })();
    const failures: string[] = [];
    let served = 0;
    try {
      // Short connections back to back for 3 s: before, stunnel closed its listening socket on
      // each reload and bound a new one, refusing or resetting the connections that came meanwhile.
      const data = randomBytes(1024);
      for (const end = Date.now() + 3000; Date.now() < end;) {
        const back = await new Promise<string>((resolve) => {
          const s = connect(plainPort!, '127.0.0.1', () => s.write(data));
          let got = 0;
          let failed: string | undefined;
          s.on('data', (d: Buffer) => (got += d.length) >= data.length && s.end());
          s.on('error', (e: NodeJS.ErrnoException) => (failed ??= e.code ?? e.message));
          s.on('close', () => resolve(failed ?? (got === data.length ? 'ok' : `${got} bytes back`)));
        });
        if (back === 'ok') served++;
        else failures.push(back);
      }
      rotating = false;
      await rotate;
      assert.ok(rotations >= 10, `${rotations} rotations`);
      assert.ok(served >= 15, `${served} connections served`);
      assert.deepEqual(failures, [], 'no connection refused, reset or cut short');
      const reloads = (log: string) => readFileSync(log, 'utf8').split('Configuration successful').length - 2;
      assert.ok(
        reloads(server.logFile) >= rotations && reloads(client.logFile) >= rotations,
        'both reloaded on each key',
      );
    } finally {
      rotating = false;
      await rotate;
      await client.stop();
      await server.stop();
    }
  });

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
    await stunnel.start();
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
