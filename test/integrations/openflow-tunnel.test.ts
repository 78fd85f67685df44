import assert from 'node:assert/strict';
import type { ChildProcess } from 'node:child_process';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { after, before, describe, it } from 'node:test';
import { freePorts } from '../../src/cli/ports.js';
import { archiveAndCheckLogs } from '../helpers/log-leaks.js';
import { startOvsLab, type OvsLab } from '../helpers/ovs-lab.js';
import { startTshark } from '../helpers/tshark.js';
import { eventually } from '../helpers/two-kmes.js';

const BIN = join(process.cwd(), 'bin', 'qks.js');
/** The tunnel client's `--rotate-every`: its connections end at twice that age, under a newer key. */
const ROTATE_EVERY_S = 4;
type Events = Array<Record<string, unknown>>;

/**
 * Issue 21: ovs-vswitchd reaches ovs-testcontroller only through a QKS tunnel keyed by QKD keys
 * that two KMEs (`qks demo`) agreed. Switch, KMEs, tunnels and controller share the switch's
 * namespace; hosts a and b sit on the switch's ports in their own namespaces.
 */
describe('OpenFlow through a QKD-keyed tunnel (issue 21)', () => {
  const dir = mkdtempSync(join(tmpdir(), 'qks-openflow-'));
  const manifest = join(dir, 'manifest.json');
  const children: ChildProcess[] = [];
  let lab: OvsLab;
  let ports: { agree: number; tls: number; plain: number; openflow: number };
  let client: { child: ChildProcess; events: Events };
  let server: { child: ChildProcess; events: Events };

  const spawnIn = (argv: string[]) => {
    const child = lab.spawnIn(argv);
    children.push(child);
    child.stderr!.resume();
    return child;
  };
  const qks = (args: string[]) => {
    const child = spawnIn([process.execPath, BIN, ...args]);
    const events: Events = [];
    createInterface({ input: child.stdout! }).on('line', (l) => {
      if (l.startsWith('{')) events.push(JSON.parse(l) as Record<string, unknown>);
    });
    return { child, events };
  };
  const stopChild = async (child: ChildProcess) => {
    if (child.exitCode !== null || child.signalCode !== null) return;
    const exited = new Promise((r) => child.once('exit', r));
    child.kill('SIGTERM');
    const timer = setTimeout(() => child.kill('SIGKILL'), 5000);
    await exited;
    clearTimeout(timer);
  };
  const side = () => ['--manifest', manifest, '--agree', `127.0.0.1:${ports.agree}`];
  const startServer = async () => {
    server = qks(
      ['tunnel', '--role', 'server', ...side(), '--sae', 'sae-b1', '--peer', 'sae-a1'].concat([
        '--listen',
        `127.0.0.1:${ports.tls}`,
        '--target',
        `127.0.0.1:${ports.openflow}`,
      ]),
    );
    await eventually(() => server.events.some((e) => e['event'] === 'listening'), 60_000, 'the tunnel server');
  };
  const startClient = (sae = 'sae-a1', rotateEveryS = ROTATE_EVERY_S) =>
    qks(
      ['tunnel', '--role', 'client', ...side(), '--sae', sae, '--peer', 'sae-b1'].concat(
        ['--listen', `127.0.0.1:${ports.plain}`, '--server', `127.0.0.1:${ports.tls}`],
        ['--rotate-every', String(rotateEveryS)],
      ),
    );
  const connectionKeys = (events: Events) =>
    events.filter((e) => e['event'] === 'connection').map((e) => e['key_ID'] as string);
  const isConnected = () => lab.vsctl('get', 'controller', 'br0', 'is_connected') === 'true';
  /** Each flow's match (without counters) and how long it has been installed, in seconds. */
  const flowAges = () =>
    new Map(
      lab
        .flows()
        .map((f) => [
          f.replace(/(cookie|duration|n_packets|n_bytes|idle_age|hard_age)=[^,]*, ?/g, '').trim(),
          Number(/duration=([\d.]+)s/.exec(f)?.[1]),
        ]),
    );

  before(async () => {
    lab = startOvsLab(dir);
    const [agree, tls, plain, openflow] = await freePorts(4);
    ports = { agree: agree!, tls: tls!, plain: plain!, openflow: openflow! };
    spawnIn([process.execPath, BIN, 'demo', '--dir', join(dir, 'site'), '--manifest', manifest]).stdout!.resume();
    await eventually(() => existsSync(manifest), 60_000, 'the demo KMEs');
    // -O OpenFlow13: with OF1.5 the switch rejects the learning switch's packet-outs.
    spawnIn(
      ['ovs-testcontroller', `ptcp:${ports.openflow}:127.0.0.1`, '-O', 'OpenFlow13'].concat([
        `--unixctl=${join(dir, 'tc.ctl')}`,
        '--no-chdir',
      ]),
    ).stdout!.resume();
    await startServer();
    client = startClient();
    await eventually(() => client.events.some((e) => e['event'] === 'listening'), 60_000, 'the tunnel client');
  });
  after(async () => {
    for (const c of children.reverse()) await stopChild(c);
    lab?.stop();
    archiveAndCheckLogs(dir);
    rmSync(dir, { recursive: true, force: true });
  });

  it('the switch reaches the controller through the tunnel; the wire shows only TLS 1.3 with a PSK', async () => {
    const capture = join(dir, 'tunnel.pcapng');
    const tshark = await startTshark(
      ['ip', 'netns', 'exec', lab.ns, 'tshark', '-i', 'lo'].concat([
        '-f',
        `tcp port ${ports.tls}`,
        '-w',
        capture,
        '-q',
      ]),
    );
    // max_backoff: reconnect within a second (the default backoff grows to 8 s).
    lab.vsctl('set-controller', 'br0', `tcp:127.0.0.1:${ports.plain}`);
    lab.vsctl('set', 'controller', 'br0', 'connection-mode=out-of-band', 'max_backoff=1000');
    await eventually(isConnected, 30_000, 'the switch to connect to its controller');
    await eventually(() => connectionKeys(server.events).length > 0, 30_000, 'the server side connection');
    // The learning switch learns from the first pings: OpenFlow messages cross the tunnel.
    await lab.ping(3);
    await tshark.stop();
    const fields = spawnSync(
      'tshark',
      ['-r', capture, '-d', `tcp.port==${ports.tls},tls`, '-Y', 'tcp.len > 0']
        .concat(['-T', 'fields', '-E', 'separator=|', '-e', 'frame.protocols', '-e', 'tls.handshake.type'])
        .concat(['-e', 'tls.handshake.extension.type', '-e', 'tls.handshake.extensions.supported_version']),
      { encoding: 'utf8' },
    )
      .stdout.trim()
      .split('\n')
      .map((l) => l.split('|'));
    assert.ok(fields.length > 4, `TLS records captured: ${fields.length}`);
    for (const [protocols] of fields) {
      assert.match(protocols!, /:tls$/, `every segment is TLS (${protocols})`);
      assert.doesNotMatch(protocols!, /openflow/);
    }
    const hellos = fields.filter(([, type]) => type === '2');
    assert.ok(hellos.length >= 1, 'a ServerHello');
    for (const [, , extensions, version] of hellos) {
      assert.ok(extensions!.split(',').includes('41'), 'the ServerHello selected the pre_shared_key');
      assert.equal(version, '0x0304', 'TLS 1.3');
    }
    const clientKeys = connectionKeys(client.events);
    assert.equal(connectionKeys(server.events)[0], clientKeys[0], 'both ends used the same agreed key');
  });

  it('the controller installs flows and the hosts ping each other', async () => {
    const { sent, received } = await lab.ping(5);
    assert.equal(received, sent, 'every echo came back');
    const flows = lab.flows();
    assert.ok(
      flows.some((f) => /dl_dst=|eth_dst=/.test(f)),
      `learned flows:\n${flows.join('\n')}`,
    );
    assert.ok(
      flows.some((f) => f.includes('idle_timeout=60')),
      'the learning switch installs its flows with idle_timeout=60',
    );
  });

  it('when keys rotate the switch reconnects under the new key; flows stay and pings pass', async () => {
    const before = flowAges();
    assert.ok(
      [...before.keys()].some((m) => /dl_dst=|eth_dst=/.test(m)),
      'learned flows before the rotation',
    );
    const keysBefore = new Set(connectionKeys(client.events));
    const started = performance.now();
    // The tunnel ends connections at twice --rotate-every: within 12 s the switch reconnects at least once.
    const pinging = lab.ping(60);
    await eventually(
      () => connectionKeys(client.events).some((k) => !keysBefore.has(k)),
      30_000,
      'a controller connection under a newer key',
    );
    const { sent, received } = await pinging;
    assert.equal(received, sent, 'no echo lost across the reconnection');
    await eventually(isConnected, 10_000, 'the switch connected again');
    const elapsed = (performance.now() - started) / 1000;
    const after = flowAges();
    for (const [match, age] of before) {
      if (!/dl_dst=|eth_dst=/.test(match)) continue;
      assert.ok(after.has(match), `flow still installed: ${match}`);
      assert.ok(after.get(match)! >= age + elapsed - 1, `not reinstalled: ${match} (${age} -> ${after.get(match)})`);
    }
  });

  it('fail-mode secure: while the tunnel is down flows stay; restarted, it agrees a new key', async () => {
    const keysBefore = new Set(connectionKeys(client.events));
    await stopChild(client.child);
    await stopChild(server.child);
    await eventually(() => !isConnected(), 10_000, 'the switch to see its controller gone');
    const flows = lab.flows();
    assert.ok(
      flows.some((f) => /dl_dst=|eth_dst=/.test(f)),
      'the learned flows stay',
    );
    const { sent, received } = await lab.ping(10);
    assert.equal(received, sent, 'installed flows carry traffic without a controller');
    // Without flows and without a controller, fail-mode secure forwards nothing.
    lab.run(['ovs-ofctl', '-O', 'OpenFlow13', 'del-flows', 'br0']);
    assert.equal((await lab.ping(3)).received, 0, 'no flow, no controller: nothing passes');
    await startServer();
    client = startClient();
    await eventually(isConnected, 30_000, 'the switch to reconnect through the restarted tunnel');
    const [key] = connectionKeys(client.events);
    assert.ok(key && !keysBefore.has(key), 'the restarted tunnel uses a newly agreed key');
    const again = await lab.ping(5);
    assert.ok(again.received >= 4, `the controller is back in charge: ${again.received} of 5 echoes`);
  });

  it('a restarted tunnel server refuses the key it no longer holds until SIGHUP makes the client agree anew', async () => {
    await stopChild(client.child);
    client = startClient('sae-a1', 3600); // no rotation unless asked
    // is_connected may still read true from the client before: wait for this client's connection.
    await eventually(() => connectionKeys(client.events).length > 0, 30_000, 'a connection through the new client');
    await eventually(isConnected, 30_000, 'the switch connected through the new client');
    const keysBefore = new Set(connectionKeys(client.events));
    await stopChild(server.child);
    await startServer(); // its ring is empty: the client's key is unknown to it
    await eventually(() => !isConnected(), 10_000, 'the switch to see its controller gone');
    await eventually(
      () => client.events.some((e) => e['event'] === 'refused'),
      10_000,
      'the client to report a refused handshake',
    );
    for (let i = 0; i < 12; i++) {
      assert.equal(isConnected(), false, 'no controller session under a key the server does not hold');
      await new Promise((r) => setTimeout(r, 250));
    }
    assert.deepEqual(connectionKeys(server.events), [], 'the restarted server carried no connection');
    client.child.kill('SIGHUP'); // rotate now
    await eventually(isConnected, 30_000, 'the switch to reconnect under the newly agreed key');
    const key = connectionKeys(client.events).at(-1);
    assert.ok(key && !keysBefore.has(key), 'a newly agreed key');
    assert.equal(connectionKeys(server.events).at(-1), key, 'the server side accepted that key');
  });

  it('a tunnel client with an SAE the server does not accept never lets the switch reach the controller', async () => {
    await stopChild(client.child);
    const served = connectionKeys(server.events).length;
    await eventually(() => !isConnected(), 10_000, 'the switch to see its controller gone');
    client = startClient('sae-a2');
    const until = performance.now() + 8000;
    while (performance.now() < until) {
      assert.equal(isConnected(), false, 'never connected');
      await new Promise((r) => setTimeout(r, 250));
    }
    assert.equal(connectionKeys(server.events).length, served, 'the tunnel server carried no new connection');
    assert.deepEqual(connectionKeys(client.events), []);
    // The server's side refused to agree a key with sae-a2, so the client never had one to listen with.
    assert.ok(
      server.events.some((e) => e['event'] === 'refused' && e['code'] === 'wrong_peer'),
      'the server side refused the agreement',
    );
    assert.ok(!client.events.some((e) => e['event'] === 'listening'), 'the client never listened');
    await eventually(() => client.child.exitCode !== null, 10_000, 'the refused client to exit');
    assert.notEqual(client.child.exitCode, 0);
  });
});
