import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { after, before, describe, it } from 'node:test';
import { freePorts } from '../../src/cli/ports.js';
import { archiveAndCheckLogs } from '../helpers/log-leaks.js';
import { startTshark } from '../helpers/tshark.js';
import { eventually } from '../helpers/two-kmes.js';
import { SSHD, startSshd, type Sshd } from '../helpers/sshd.js';

const inCi = !!process.env['CI'] && process.env['CI'] !== 'false';
const BIN = join(process.cwd(), 'bin', 'qks.js');

function missing(): string | undefined {
  if (process.getuid?.() !== 0) return 'needs root (sshd, tshark on lo)';
  const tools = [SSHD, '/usr/bin/ssh', '/usr/bin/ssh-keygen', '/usr/bin/tshark'].filter((f) => !existsSync(f));
  if (tools.length) return `missing ${tools.join(', ')} (scripts/install-test-deps.sh installs them)`;
  return undefined;
}

type Events = Array<Record<string, unknown>>;
const eventsOf = (text: string): Events =>
  text
    .split('\n')
    .filter((l) => l.startsWith('{'))
    .map((l) => JSON.parse(l) as Record<string, unknown>);
const keyIdsOf = (events: Events, event: string) =>
  events.filter((e) => e['event'] === event).map((e) => e['key_ID'] as string);

describe(
  'real OpenSSH through qks tunnel (ProxyCommand --stdio, server side in front of sshd)',
  {
    skip: !inCi && missing(),
  },
  () => {
    const dir = mkdtempSync(join(tmpdir(), 'qks-ssh-'));
    const manifest = join(dir, 'manifest.json');
    const children: ChildProcess[] = [];
    let sshd: Sshd;
    let sshdPort = 0;

    /** A qks tunnel server in front of sshd; its events as they come. */
    async function tunnelServer(extra: string[] = []) {
      const [agree, tls] = await freePorts(2);
      const child = spawn(process.execPath, [
        BIN,
        'tunnel',
        '--role',
        'server',
        '--manifest',
        manifest,
        '--sae',
        'sae-b1',
        '--peer',
        'sae-a1',
        '--agree',
        `127.0.0.1:${agree}`,
        '--listen',
        `127.0.0.1:${tls}`,
        '--target',
        `127.0.0.1:${sshdPort}`,
        ...extra,
      ]);
      children.push(child);
      const events: Events = [];
      createInterface({ input: child.stdout! }).on('line', (l) =>
        events.push(JSON.parse(l) as Record<string, unknown>),
      );
      await eventually(() => events.some((e) => e['event'] === 'listening'), 60_000, 'the tunnel server');
      return { events, agree: agree!, tls: tls! };
    }

    const proxyArgs = (server: { agree: number; tls: number }, sae: string) =>
      [BIN, 'tunnel', '--role', 'client', '--stdio', '--manifest', manifest]
        .concat(['--sae', sae, '--peer', 'sae-b1', '--agree', `127.0.0.1:${server.agree}`])
        .concat(['--server', `127.0.0.1:${server.tls}`]);

    /** `ssh ... root@peer COMMAND` whose ProxyCommand is `qks tunnel --stdio` as `sae`. */
    function ssh(server: { agree: number; tls: number }, command: string, sae = 'sae-a1') {
      const proxy = [process.execPath, ...proxyArgs(server, sae)].join(' ');
      const child = spawn('ssh', sshd.sshArgs(command, proxy));
      children.push(child);
      let stdout = '';
      let stderr = '';
      child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
      child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
      const done = new Promise<{ code: number | null; stdout: string; stderr: string }>((resolve) =>
        child.once('close', (code) => resolve({ code, stdout, stderr })),
      );
      return { done, stderr: () => stderr };
    }
    const killAll = () => children.forEach((c) => c.kill('SIGKILL'));
    process.once('exit', killAll); // a run cut short by its timeout leaves no sshd or demo behind
    const sshdConnections = () =>
      sshd
        .log()
        .split('\n')
        .filter((l) => l.startsWith('Connection from')).length;

    before(async () => {
      const why = missing();
      if (why) throw new Error(`the SSH tunnel test cannot run in CI: ${why}`);
      children.push(spawn(process.execPath, [BIN, 'demo', '--dir', join(dir, 'site'), '--manifest', manifest]));
      sshd = await startSshd(dir);
      children.push(sshd.child);
      sshdPort = sshd.port;
      await eventually(() => existsSync(manifest), 60_000, 'the demo');
      await new Promise((r) => setTimeout(r, 1000)); // some key material
    });
    after(() => {
      killAll();
      archiveAndCheckLogs(dir);
      rmSync(dir, { recursive: true, force: true });
    });

    it('runs a command on sshd over TLS 1.3 keyed by a key both KMEs agreed; the wire shows only TLS 1.3 with a PSK', async () => {
      const server = await tunnelServer();
      const pcap = join(mkdtempSync(join(tmpdir(), 'qks-ssh-capture-')), 'ssh.pcapng');
      const tshark = await startTshark(['tshark', '-i', 'lo', '-f', `tcp port ${server.tls}`, '-w', pcap, '-q']);
      const run = await ssh(server, 'echo through-qkd; whoami').done;
      await tshark.stop();
      assert.equal(run.code, 0, run.stderr);
      assert.equal(run.stdout, 'through-qkd\nroot\n');
      // The ProxyCommand's events reach ssh's stderr: the key it agreed, and the connection under it.
      const client = eventsOf(run.stderr);
      const [keyId] = keyIdsOf(client, 'key');
      assert.ok(keyId);
      assert.deepEqual(keyIdsOf(client, 'connection'), [keyId]);
      assert.ok(keyIdsOf(server.events, 'key').includes(keyId), 'the server side agreed the same key');
      await eventually(() => keyIdsOf(server.events, 'connection').includes(keyId), 10_000, 'the server connection');

      const fields = spawnSync(
        'tshark',
        ['-r', pcap, '-d', `tcp.port==${server.tls},tls`, '-Y', 'tcp.len > 0', '-T', 'fields', '-E', 'separator=|']
          .concat(['-e', 'frame.protocols', '-e', 'tls.handshake.type', '-e', 'tls.handshake.extension.type'])
          .concat(['-e', 'tls.handshake.extensions.supported_version']),
        { encoding: 'utf8' },
      );
      const frames = fields.stdout.trim().split('\n').filter(Boolean);
      assert.ok(frames.length > 6, `a whole SSH session was captured (${frames.length} frames)`);
      for (const f of frames) assert.match(f.split('|')[0]!, /:tls$/, `every payload is a TLS record: ${f}`);
      const hellos = frames.map((f) => f.split('|')).filter(([, type]) => type?.split(',').includes('2'));
      assert.equal(hellos.length, 1, 'one handshake');
      const [, , extensions, versions] = hellos[0]!;
      assert.ok(extensions!.split(',').includes('41'), 'the ServerHello selected a pre_shared_key');
      assert.equal(versions, '0x0304', 'TLS 1.3');
      // SSH's own protocol never shows: not its banner, not a packet tshark would decode as SSH.
      assert.ok(!readFileSync(pcap).includes('SSH-2.0'), 'no SSH banner on the wire');
      const asSsh = spawnSync('tshark', ['-r', pcap, '-d', `tcp.port==${server.tls},ssh`, '-Y', 'ssh.protocol'], {
        encoding: 'utf8',
      });
      assert.equal(asSsh.stdout.trim(), '', 'nothing there decodes as an SSH banner');
      rmSync(join(pcap, '..'), { recursive: true, force: true });
    });

    it('an SAE the server side does not accept cannot connect: ssh fails and sshd sees no connection', async () => {
      const server = await tunnelServer();
      const before = sshdConnections();
      const run = await ssh(server, 'echo should-not-run', 'sae-a2').done;
      assert.equal(run.code, 255, 'ssh failed');
      assert.equal(run.stdout, '');
      const [error] = eventsOf(run.stderr).filter((e) => e['event'] === 'error');
      // The ProxyCommand alone, as ssh ran it: it exits with 1.
      const proxy = spawnSync(process.execPath, proxyArgs(server, 'sae-a2'), { input: '', encoding: 'utf8' });
      assert.equal(proxy.status, 1, proxy.stderr);
      assert.match(String(error?.['message']), /responder refused: SAE sae-a2 may not offer keys here/);
      assert.match(run.stderr, /Connection closed by UNKNOWN port 65535/);
      assert.ok(
        server.events.some((e) => e['event'] === 'refused'),
        'the server side refused the agreement',
      );
      assert.equal(keyIdsOf(server.events, 'connection').length, 0);
      await new Promise((r) => setTimeout(r, 500));
      assert.equal(sshdConnections(), before, 'sshd saw no connection');
    });

    it('--stdio refuses the options of a listening tunnel, and qks stunnel has none', () => {
      for (const [command, extra, message] of [
        ['tunnel', ['--listen', '127.0.0.1:1'], '--listen is not for --stdio: each run carries one connection'],
        ['tunnel', ['--rotate-every', '60'], '--rotate-every is not for --stdio: each run carries one connection'],
        ['stunnel', [], '--stdio is for qks tunnel'],
      ] as const) {
        const args = [BIN, command, '--role', 'client', '--stdio', '--peer', 'x', ...extra];
        const run = spawnSync(process.execPath, args, { encoding: 'utf8' });
        assert.equal(run.status, 2);
        assert.equal(run.stderr, `qks ${command}: ${message} (qks ${command} --help)\n`);
      }
    });

    it('a TLS client with a key the KMEs never agreed cannot reach sshd', async () => {
      const server = await tunnelServer();
      const before = sshdConnections();
      const client = spawnSync(
        'openssl',
        [
          's_client',
          '-connect',
          `127.0.0.1:${server.tls}`,
          '-tls1_3',
          '-ciphersuites',
          'TLS_AES_128_GCM_SHA256',
        ].concat(['-psk_identity', '00000000-0000-4000-8000-000000000000', '-psk', 'ab'.repeat(32)]),
        { input: 'SSH-2.0-probe\r\n', encoding: 'utf8', timeout: 20_000 },
      );
      assert.doesNotMatch(client.stdout, /SSH-2\.0-OpenSSH/, 'no sshd banner came back');
      await eventually(() => server.events.some((e) => e['event'] === 'refused'), 10_000, 'the refusal');
      assert.equal(keyIdsOf(server.events, 'connection').length, 0);
      await new Promise((r) => setTimeout(r, 500));
      assert.equal(sshdConnections(), before, 'sshd saw no connection');
    });

    it('a long session keeps its key while later sessions agree new ones', async () => {
      const server = await tunnelServer();
      const long = ssh(server, 'sleep 6; echo done');
      await eventually(() => keyIdsOf(eventsOf(long.stderr()), 'connection').length === 1, 30_000, 'the long session');
      const second = await ssh(server, 'echo second').done;
      assert.equal(second.code, 0, second.stderr);
      assert.equal(second.stdout, 'second\n');
      const first = await long.done;
      assert.equal(first.code, 0, first.stderr);
      assert.equal(first.stdout, 'done\n', 'the long session went on to its end');
      const [firstKey] = keyIdsOf(eventsOf(first.stderr), 'connection');
      const [secondKey] = keyIdsOf(eventsOf(second.stderr), 'connection');
      assert.ok(firstKey && secondKey && firstKey !== secondKey, 'each session had a key of its own');
      assert.deepEqual(keyIdsOf(server.events, 'connection'), [firstKey, secondKey]);
    });

    it('with --max-connection-age on the server side, a session older than that is closed: ssh exits 255', async () => {
      const server = await tunnelServer(['--max-connection-age', '3']);
      const run = await ssh(server, 'sleep 8; echo done').done;
      assert.equal(run.code, 255);
      assert.equal(run.stdout, '', 'the command never finished');
      // What the user sees: the tunnel's notice, then ssh's own (the proxy's end of stream).
      assert.ok(
        eventsOf(run.stderr).some((e) => e['event'] === 'ended'),
        run.stderr,
      );
      assert.match(run.stderr, /client_loop: send disconnect: Broken pipe|Connection to peer closed by remote host/);
      const again = await ssh(server, 'echo again').done;
      assert.equal(again.code, 0, again.stderr);
      assert.equal(again.stdout, 'again\n', 'a new session connects under a new key');
    });
  },
);
