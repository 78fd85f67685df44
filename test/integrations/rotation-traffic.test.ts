import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import type { AddressInfo, Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it, type TestContext } from 'node:test';
import { SETTLE_MS } from '../../src/cli/tunnel.js';
import { freePorts } from '../../src/cli/ports.js';
import { StunnelManager } from '../../src/integrations/stunnel/stunnel-manager.js';
import { TunnelClient, TunnelServer } from '../../src/integrations/tls-psk/psk-tunnel.js';
import { KeyRing } from '../../src/sae/key-ring.js';
import { Rotation } from '../../src/sae/rotation.js';
import { roundTrip, startEcho } from '../helpers/echo-server.js';
import { archiveAndCheckLogs, recordDeliveredKeys } from '../helpers/log-leaks.js';
import { resumingStream, type StreamResult } from '../helpers/resuming-stream.js';
import { eventually, startSites, type TwoSites } from '../helpers/two-kmes.js';
import { initiatorFor, responderFor, saeOf } from '../sae/sae-fixture.js';

/** `--rotate-every`, scaled down: the next key is agreed at 80% of it, and used SETTLE_MS later. */
const ROTATE_EVERY_MS = 3000;
/** `qks tunnel`'s default `--max-connection-age`: twice the rotation period. */
const MAX_AGE_MS = 2 * ROTATE_EVERY_MS;
/** The application: 32 KiB every 10 ms (about 3 MB/s), at most 1 MiB not yet echoed back. */
const PACE = { chunk: 32 * 1024, everyMs: 10, window: 1024 * 1024 };
const local = (port = 0) => ({ host: '127.0.0.1', port });
const MB = (n: number) => `${(n / 1024 / 1024).toFixed(1)} MB`;

/**
 * Issue 17: key rotation under continuous traffic, as the application sees it. Keys come from the
 * SAE toolkit's agreement between sae-a1 and sae-b1, each side's copy from its own KME, rotated by
 * the same Rotation (period, lead, settle) that `qks tunnel` and `qks stunnel` run.
 */
describe('key rotation under continuous traffic (issue 17)', () => {
  let sites: TwoSites;
  let echo: Server;
  const dir = mkdtempSync(join(tmpdir(), 'qks-rotation-traffic-'));
  before(async () => {
    sites = await startSites();
    echo = await startEcho();
    const { kme } = saeOf(sites, 'sae-a1');
    await eventually(async () => (await kme.status('sae-b1')).stored_key_count > 50, 30_000);
  });
  after(async () => {
    await sites.stop();
    await new Promise((r) => echo.close(r));
    archiveAndCheckLogs(dir); // stunnel's logs name key IDs, never key bytes
    rmSync(dir, { recursive: true, force: true });
  });
  const echoAt = () => local((echo.address() as AddressInfo).port);

  /** Both ends' rings, fed by agreements; `keys` lists each key as the client side took it into use. */
  async function agreement() {
    const responder = responderFor(sites, 'sae-b1', ['sae-a1']);
    const serverRing = new KeyRing({ graceMs: 120_000 });
    const serverKeys: string[] = [];
    responder.on('keys', (a) => a.keys.forEach((k) => (serverKeys.push(k.keyId), serverRing.add(k))));
    const { port } = await responder.listen();
    const initiator = initiatorFor(sites, 'sae-a1', 'sae-b1', port);
    const clientRing = new KeyRing({ graceMs: 120_000 });
    const keys: Array<{ keyId: string; at: number }> = [];
    clientRing.on('key', (k) => {
      keys.push({ keyId: k.keyId, at: performance.now() });
      recordDeliveredKeys([k.key.toString('base64')]); // fingerprints only: for the log scans
    });
    const rotation = new Rotation(() => initiator.agree(1), clientRing, {
      maxAgeMs: ROTATE_EVERY_MS,
      settleMs: SETTLE_MS,
    });
    return {
      serverRing,
      clientRing,
      serverKeys,
      keys,
      /** Keys taken into use after `t`. */
      rotationsSince: (t: number) => keys.filter((k) => k.at > t).length,
      start: () => rotation.start(),
      stop: async () => {
        rotation.stop();
        initiator.close();
        await responder.close();
        serverRing.clear();
        clientRing.clear();
      },
    };
  }

  const report = (t: TestContext, r: StreamResult, rotations: number) => {
    const gaps = r.connections.slice(1).map((c, i) => c.firstEchoAt! - r.connections[i]!.lastEchoAt!);
    t.diagnostic(
      `${MB(r.total)} streamed across ${rotations} rotations, ${r.connections.length - 1} reconnects, ${r.resentBytes} bytes resent, ` +
        `pauses at reconnects ${gaps.map((g) => g.toFixed(0)).join(', ') || '-'} ms`,
    );
  };

  it('qks tunnel: open connections outlive rotations, end at their maximum age; the application reconnects on the new key and loses nothing', async (t) => {
    const a = await agreement();
    const server = new TunnelServer({ listen: local(), target: echoAt(), keys: a.serverRing, mode: 'psk_ke' });
    const client = new TunnelClient({
      listen: local(),
      server: await server.listen(),
      keys: a.clientRing,
      mode: 'psk_ke',
      maxConnectionAgeMs: MAX_AGE_MS,
    });
    const opened: Array<{ keyId: string; at: number }> = [];
    const atServer: string[] = [];
    const aged: string[] = [];
    client.on('connection', (c) => opened.push({ keyId: c.keyId, at: performance.now() }));
    server.on('connection', (c) => atServer.push(c.keyId));
    client.on('aged', (c) => aged.push(c.keyId));
    try {
      await a.start();
      const { port } = await client.listen();
      const t0 = performance.now();
      // Two maximum ages and a bit: two reconnects; meanwhile at least three rotations.
      const r = await resumingStream(port, {
        ...PACE,
        until: () => performance.now() - t0 > 2 * MAX_AGE_MS + 1500 && a.rotationsSince(t0) >= 3,
      });
      report(t, r, a.rotationsSince(t0));
      const conns = r.connections;

      // Nothing lost, nothing changed, in order.
      assert.deepEqual(
        conns.map((c) => c.error),
        conns.map(() => undefined),
        'no connection failed',
      );
      assert.equal(r.receivedSha256, r.sentSha256, 'every byte came back once, in order');
      assert.ok(a.rotationsSince(t0) >= 3, 'at least three rotations during the stream');

      // Each reconnect is a maximum age reached, never a rotation: the tunnel ended the connection
      // (the application read end-of-stream, no reset) MAX_AGE_MS after it opened, within the grace.
      assert.ok(conns.length >= 3, `two reconnects or more, got ${conns.length - 1}`);
      assert.equal(aged.length, conns.length - 1, 'one maximum age per reconnect');
      for (const c of conns.slice(0, -1)) {
        assert.ok(c.endedByPeer, 'ended by the tunnel, with an end of stream');
        const life = c.closedAt - c.openedAt;
        assert.ok(life >= MAX_AGE_MS - 50 && life < MAX_AGE_MS + 5000, `lived ${life.toFixed(0)} ms`);
      }
      assert.equal(conns.at(-1)!.endedByPeer, false, 'the last one the application ended');

      // Keys: each connection on the key current when it opened, the server on the same one; every
      // connection on a key of its own; the old ones kept carrying data after the key changed.
      assert.equal(opened.length, conns.length);
      assert.deepEqual(
        atServer,
        opened.map((o) => o.keyId),
        'the server side saw the same keys',
      );
      assert.deepEqual(
        aged,
        opened.slice(0, -1).map((o) => o.keyId),
        'each aged on its own key',
      );
      for (const [i, c] of conns.entries()) {
        const current = a.keys.filter((k) => k.at <= c.openedAt).at(-1)!;
        const cameMeanwhile = a.keys.filter((k) => k.at > c.openedAt && k.at <= opened[i]!.at);
        assert.ok(
          [current, ...cameMeanwhile].some((k) => k.keyId === opened[i]!.keyId),
          `connection ${i} used the key current when it opened`,
        );
        assert.ok(a.serverKeys.includes(opened[i]!.keyId), 'a key the server side agreed too');
      }
      assert.equal(new Set(opened.map((o) => o.keyId)).size, conns.length, 'each connection on another key');
      for (const [i, c] of conns.slice(0, -1).entries()) {
        const replaced = a.keys.find((k) => k.at > opened[i]!.at && k.at < c.closedAt);
        assert.ok(replaced, `connection ${i} was open when its key was replaced`);
        assert.ok(c.lastEchoAt! > replaced.at + 100, `connection ${i} carried data after its key was replaced`);
      }

      // What the application sent twice: at most what it had in flight at each reconnect.
      assert.ok(r.resentBytes <= PACE.window * (conns.length - 1), `resent ${r.resentBytes} bytes`);
    } finally {
      await client.close();
      await server.close();
      await a.stop();
    }
  });

  it('qks stunnel: the stream keeps its one connection across rotations; new connections take each new key, and none fails while stunnel reloads', async (t) => {
    const a = await agreement();
    const [tlsPort, plainPort] = await freePorts(2);
    const mode = 'psk_dhe_ke';
    const server = new StunnelManager({
      role: 'server',
      dir: join(dir, 'server'),
      accept: local(tlsPort),
      connect: echoAt(),
      keys: a.serverRing,
      mode,
    });
    const client = new StunnelManager({
      role: 'client',
      dir: join(dir, 'client'),
      accept: local(plainPort),
      connect: local(tlsPort),
      keys: a.clientRing,
      mode,
    });
    const exits: string[] = [];
    for (const m of [server, client]) m.on('exited', (e) => exits.push(JSON.stringify(e)));
    let probing = true;
    const probes: Array<{ ok: boolean; at: number }> = [];
    /** A short new connection every 400 ms, the first once the stream's connection is up. */
    const probe = async () => {
      const data = Buffer.from('probe');
      for (;;) {
        await new Promise((r) => setTimeout(r, 400));
        if (!probing) return;
        probes.push({ ok: (await roundTrip(plainPort!, data)).equals(data), at: performance.now() });
      }
    };
    try {
      await server.start(); // before the first key: it listens and refuses handshakes
      await a.start();
      await client.start(); // its configuration names the current key
      const t0 = performance.now();
      const probing$ = probe();
      const r = await resumingStream(plainPort!, {
        ...PACE,
        until: () => a.rotationsSince(t0) >= 3 && performance.now() - a.keys.at(-1)!.at > 1000,
      });
      probing = false;
      await probing$;
      report(t, r, a.rotationsSince(t0));

      assert.equal(r.connections.length, 1, 'no reconnect: stunnel keeps open connections on their key');
      assert.equal(r.connections[0]!.error, undefined);
      assert.equal(r.connections[0]!.endedByPeer, false, 'the application ended it');
      assert.equal(r.resentBytes, 0);
      assert.equal(r.receivedSha256, r.sentSha256, 'every byte came back once, in order');
      assert.ok(a.rotationsSince(t0) >= 3, 'at least three rotations during the stream');
      assert.deepEqual(exits, [], 'no stunnel died');

      // Every probe got through, though each key reloaded both stunnels while they ran.
      assert.ok(probes.length >= 10, `${probes.length} probes`);
      assert.deepEqual(
        probes.filter((p) => !p.ok),
        [],
        'no new connection failed during the reloads',
      );

      // The server's log names each connection's PSK identity: the stream's is the key of when it
      // started; every key that came during the stream served later connections.
      const identities = [...readFileSync(server.logFile, 'utf8').matchAll(/PSK identity "([^"]+)"/g)].map((m) => m[1]);
      const streamKey = a.keys.filter((k) => k.at <= r.connections[0]!.openedAt).at(-1)!.keyId;
      assert.equal(identities[0], streamKey, 'the stream used the key current when it opened');
      for (const k of a.keys.filter((k) => k.at > t0)) {
        assert.ok(identities.includes(k.keyId), `a new connection used the key of ${(k.at - t0).toFixed(0)} ms`);
        assert.ok(a.serverKeys.includes(k.keyId));
      }
    } finally {
      probing = false;
      await client.stop();
      await server.stop();
      await a.stop();
    }
  });
});
