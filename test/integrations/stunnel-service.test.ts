import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import type { AddressInfo, Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { after, before, describe, it } from 'node:test';
import { freePorts } from '../../src/cli/ports.js';
import { roundTrip, startEcho } from '../helpers/echo-server.js';
import { archiveAndCheckLogs } from '../helpers/log-leaks.js';
import { eventually } from '../helpers/two-kmes.js';

const BIN = join(process.cwd(), 'bin', 'qks.js');
type Event = Record<string, unknown>;

/** The stunnel processes running with this configuration file. */
const stunnelsOf = (config: string): number[] =>
  spawnSync('pgrep', ['-f', `stunnel4 ${config}`], { encoding: 'utf8' })
    .stdout.split('\n')
    .filter(Boolean)
    .map(Number);

/** The key IDs (PSK identities) in a PSKsecrets file; the key bytes are never read out. */
const identitiesIn = (file: string): string[] =>
  existsSync(file)
    ? readFileSync(file, 'utf8')
        .split('\n')
        .filter(Boolean)
        .map((l) => l.slice(0, l.indexOf(':')))
    : [];

/**
 * `qks stunnel` as an operator runs it, both roles, on the demo's two KMEs: a real stunnel at each
 * end, keys agreed through the KMEs, SIGHUP, a stunnel that dies, and a parent killed with SIGKILL.
 */
describe('qks stunnel, server and client, as services', () => {
  const dir = mkdtempSync(join(tmpdir(), 'qks-stunnel-service-'));
  const manifest = join(dir, 'manifest.json');
  const children: ChildProcess[] = [];
  let echo: Server;
  const run = (args: string[]) => {
    const child = spawn(process.execPath, [BIN, ...args], { stdio: ['ignore', 'pipe', 'inherit'] });
    children.push(child);
    const events: Event[] = [];
    createInterface({ input: child.stdout! }).on('line', (l) => events.push(JSON.parse(l) as Event));
    return { child, events };
  };
  const exited = (child: ChildProcess) =>
    child.exitCode !== null || child.signalCode !== null
      ? Promise.resolve()
      : new Promise<void>((r) => child.once('exit', () => r()));

  before(async () => {
    children.push(
      spawn(process.execPath, [BIN, 'demo', '--dir', join(dir, 'site'), '--manifest', manifest, '--rate', '1000000'], {
        stdio: 'ignore',
      }),
    );
    echo = await startEcho();
    await eventually(() => existsSync(manifest), 30_000, 'the demo');
  });
  after(async () => {
    for (const c of children) c.kill('SIGKILL');
    await new Promise((r) => echo.close(r));
    archiveAndCheckLogs(dir);
    rmSync(dir, { recursive: true, force: true });
  });

  /** Eventually, a stream through the client's plaintext port comes back whole. */
  const carries = (port: number, what: string) =>
    eventually(
      async () => {
        const data = randomBytes(50_000);
        return (await roundTrip(port, data)).equals(data);
      },
      30_000,
      what,
    );

  it('runs a real stunnel at both ends, reloads it on every key, restarts one that dies, and leaves nothing behind a SIGKILL', async () => {
    const [agree, tls, plain] = await freePorts(3);
    const target = `127.0.0.1:${(echo.address() as AddressInfo).port}`;
    const [serverDir, clientDir] = [join(dir, 'server'), join(dir, 'client')];
    const common = ['--manifest', manifest, '--agree', `127.0.0.1:${agree}`];
    const server = run(
      ['stunnel', '--role', 'server', ...common, '--sae', 'sae-b1', '--peer', 'sae-a1', '--dir', serverDir].concat([
        '--listen',
        `127.0.0.1:${tls}`,
        '--target',
        target,
      ]),
    );
    await eventually(() => server.events.some((e) => e['event'] === 'listening'), 60_000, 'the server side');
    const client = run(
      ['stunnel', '--role', 'client', ...common, '--sae', 'sae-a1', '--peer', 'sae-b1', '--dir', clientDir].concat([
        '--listen',
        `127.0.0.1:${plain}`,
        '--server',
        `127.0.0.1:${tls}`,
      ]),
    );
    const [serverConf, serverSecrets] = [join(serverDir, 'stunnel.conf'), join(serverDir, 'psk-secrets.txt')];
    await carries(plain!, 'a stream through both stunnels');

    // A real stunnel serves the server side, with the key the client agreed in its secrets file.
    const [first] = stunnelsOf(serverConf);
    assert.ok(first, 'a stunnel process runs the server configuration');
    assert.equal(stunnelsOf(join(clientDir, 'stunnel.conf')).length, 1, 'and one the client configuration');
    const firstKey = client.events.find((e) => e['event'] === 'key')!['key_ID'] as string;
    assert.deepEqual(identitiesIn(serverSecrets), [firstKey], 'the placeholder of before the first key is gone');

    // SIGHUP: the client rotates, the server reloads the new key; neither dies.
    client.child.kill('SIGHUP');
    server.child.kill('SIGHUP');
    await eventually(() => client.events.filter((e) => e['event'] === 'key').length >= 2, 30_000, 'a new key');
    const secondKey = client.events.filter((e) => e['event'] === 'key')[1]!['key_ID'] as string;
    await eventually(() => identitiesIn(serverSecrets).includes(secondKey), 10_000, 'the new key at the server');
    assert.deepEqual(stunnelsOf(serverConf), [first], 'reloaded, not restarted');
    assert.equal(server.child.exitCode, null, 'the server side lives on after SIGHUP');
    await carries(plain!, 'a stream on the new key');

    // stunnel dies: reported, started again, and serving again.
    process.kill(first, 'SIGKILL');
    await eventually(() => server.events.some((e) => e['event'] === 'stunnel-exited'), 10_000, 'the exit reported');
    await eventually(() => stunnelsOf(serverConf).some((p) => p !== first), 10_000, 'stunnel started again');
    assert.ok(server.events.some((e) => e['event'] === 'stunnel-restarting'));
    await carries(plain!, 'a stream through the restarted stunnel');

    // The parent is killed with SIGKILL: its stunnel and its secrets file go too.
    server.child.kill('SIGKILL');
    await exited(server.child);
    await eventually(() => stunnelsOf(serverConf).length === 0, 10_000, 'no stunnel left behind');
    await eventually(() => !existsSync(serverSecrets), 10_000, 'no secrets file left behind');

    // SIGTERM stops the client cleanly: its stunnel stopped, its secrets file removed.
    client.child.kill('SIGTERM');
    await exited(client.child);
    assert.equal(client.child.exitCode, 0);
    assert.deepEqual(stunnelsOf(join(clientDir, 'stunnel.conf')), []);
    assert.equal(existsSync(join(clientDir, 'psk-secrets.txt')), false);
  });
});
