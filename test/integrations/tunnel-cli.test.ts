import assert from 'node:assert/strict';
import { archiveAndCheckLogs } from '../helpers/log-leaks.js';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { connect, type AddressInfo, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { after, before, describe, it } from 'node:test';
import { freePorts } from '../../src/cli/ports.js';
import type { DemoManifest } from '../../src/cli/demo.js';
import { KmeClient } from '../../src/sae/kme-client.js';
import { startEcho } from '../helpers/echo-server.js';
import { eventually } from '../helpers/two-kmes.js';

const BIN = join(process.cwd(), 'bin', 'qks.js');

describe('qks tunnel on the demo network', () => {
  const dir = mkdtempSync(join(tmpdir(), 'qks-tunnel-cli-'));
  const manifest = join(dir, 'manifest.json');
  const children: ChildProcess[] = [];
  let echo: Server;
  const run = (args: string[]) => {
    const child = spawn(process.execPath, [BIN, ...args]);
    children.push(child);
    const events: Array<Record<string, unknown>> = [];
    createInterface({ input: child.stdout! }).on('line', (l) => events.push(JSON.parse(l) as Record<string, unknown>));
    return events;
  };

  before(async () => {
    children.push(
      spawn(process.execPath, [BIN, 'demo', '--dir', join(dir, 'site'), '--manifest', manifest], { stdio: 'ignore' }),
    );
    echo = await startEcho();
    await eventually(() => existsSync(manifest), 30_000, 'the demo');
    await new Promise((r) => setTimeout(r, 1000)); // some key material
  });
  after(async () => {
    for (const c of children) c.kill('SIGKILL');
    await new Promise((r) => echo.close(r));
    archiveAndCheckLogs(dir);
    rmSync(dir, { recursive: true, force: true });
  });

  /** Sends `data` through the tunnel's plaintext port and resolves with what came back. */
  const roundTrip = (port: number, data: Buffer) =>
    new Promise<Buffer>((resolve, reject) => {
      const s = connect(port, '127.0.0.1', () => s.write(data));
      const chunks: Buffer[] = [];
      let got = 0;
      s.on('data', (d: Buffer) => {
        chunks.push(d);
        got += d.length;
        if (got >= data.length) {
          s.end();
          resolve(Buffer.concat(chunks));
        }
      });
      s.on('error', reject);
    });

  /** A qks tunnel server and client pair on fresh ports; extra client arguments as given. */
  async function tunnelPair(clientArgs: string[]) {
    const [agree, tls, plain] = await freePorts(3);
    const target = `127.0.0.1:${(echo.address() as AddressInfo).port}`;
    const side = ['--manifest', manifest, '--agree', `127.0.0.1:${agree}`];
    const server = run(
      ['tunnel', '--role', 'server', ...side, '--sae', 'sae-b1', '--peer', 'sae-a1'].concat([
        '--listen',
        `127.0.0.1:${tls}`,
        '--target',
        target,
      ]),
    );
    await eventually(() => server.some((e) => e['event'] === 'listening'), 60_000, 'the server side');
    const client = run(
      ['tunnel', '--role', 'client', ...side, '--sae', 'sae-a1', '--peer', 'sae-b1'].concat([
        '--listen',
        `127.0.0.1:${plain}`,
        '--server',
        `127.0.0.1:${tls}`,
        ...clientArgs,
      ]),
    );
    await eventually(() => client.some((e) => e['event'] === 'listening'), 60_000, 'the client side');
    return { server, client, plain: plain! };
  }
  const keysOf = (events: Array<Record<string, unknown>>) =>
    events.filter((e) => e['event'] === 'key').map((e) => e['key_ID'] as string);
  const connectionKeys = (events: Array<Record<string, unknown>>) =>
    events.filter((e) => e['event'] === 'connection').map((e) => e['key_ID'] as string);

  it('rotates by uses: each connection is a use, the next key comes before the limit', async () => {
    const { server, client, plain } = await tunnelPair(['--rotate-uses', '3', '--rotate-every', '3600']);
    const data = randomBytes(1000);
    for (let i = 0; i < 7; i++) {
      const keysBefore = keysOf(client).length;
      assert.ok((await roundTrip(plain, data)).equals(data), `connection ${i}`);
      await eventually(() => connectionKeys(client).length === i + 1, 30_000, `connection ${i} to be reported`);
      // The second use of a key starts the next agreement (lead 0.8 of 3 uses): it completes
      // before the next connection, however long that takes on a busy machine.
      const latest = keysOf(client).at(-1);
      if (connectionKeys(client).filter((k) => k === latest).length >= 2) {
        await eventually(() => keysOf(client).length > keysBefore, 30_000, `the key after connection ${i}`);
      }
    }
    const keys = keysOf(client);
    const used = connectionKeys(client);
    // Lead 0.8 of 3 uses: the next key is agreed at the second use, so each key carries two connections.
    assert.ok(keys.length >= 3, `at least three keys for seven connections, got ${keys.length}`);
    assert.ok(new Set(used).size >= 3, `connections used ${new Set(used).size} keys`);
    for (const k of new Set(used)) {
      assert.ok(used.filter((u) => u === k).length <= 3, `key ${k} carried at most 3 connections`);
    }
    for (const k of keys) assert.ok(keysOf(server).includes(k), `the server side agreed ${k} too`);
    await eventually(() => connectionKeys(server).length === 7, 30_000, 'the server side to report');
    assert.deepEqual(connectionKeys(server), used, 'the server side saw each connection under the same key');
  });

  it('rotates by bytes carried through the tunnel', async () => {
    const { server, client, plain } = await tunnelPair(['--rotate-bytes', '400000', '--rotate-every', '3600']);
    const data = randomBytes(170_000); // 340,000 bytes both ways: past 0.8 of the limit, not past it
    assert.ok((await roundTrip(plain, data)).equals(data));
    await eventually(() => keysOf(client).length >= 2, 30_000, 'a second key');
    assert.ok((await roundTrip(plain, randomBytes(100))).length === 100);
    await eventually(() => connectionKeys(client).length === 2, 30_000, 'the second connection');
    const [firstKey, secondKey] = keysOf(client);
    assert.deepEqual(connectionKeys(client), [firstKey, secondKey], 'the next connection used the new key');
    assert.ok(keysOf(server).includes(secondKey!));
    // Small traffic does not rotate: 100 bytes both ways is far below the limit.
    await new Promise((r) => setTimeout(r, 300));
    assert.equal(keysOf(client).length, 2);
  });

  it('qks stunnel refuses --rotate-uses, which it cannot count', async () => {
    const [agree] = await freePorts(1);
    const child = spawn(
      process.execPath,
      [BIN, 'stunnel', '--role', 'client', '--manifest', manifest]
        .concat(['--sae', 'sae-a1', '--peer', 'sae-b1', '--agree', `127.0.0.1:${agree}`, '--listen', '127.0.0.1:1'])
        .concat(['--server', '127.0.0.1:2', '--dir', join(dir, 'refused'), '--rotate-uses', '5']),
    );
    let stderr = '';
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const code = await new Promise<number | null>((r) => child.once('exit', r));
    assert.equal(code, 2);
    assert.match(stderr, /cannot count uses or bytes/);
  });

  it('qks stunnel refuses the options only the native tunnel has', () => {
    const run = spawnSync(process.execPath, [BIN, 'stunnel', '--role', 'server', '--max-connections', '5'], {
      encoding: 'utf8',
    });
    assert.equal(run.status, 2);
    assert.equal(
      run.stderr,
      "qks stunnel: --max-connections is for qks tunnel: stunnel's own connections are not managed by qks (qks stunnel --help)\n",
    );
  });

  for (const serverEngine of ['tunnel', 'stunnel']) {
    it(`carries a TCP stream over TLS 1.3 keyed by the key both sides agreed (server: qks ${serverEngine})`, async () => {
      const started = Date.now();
      const [agree, tls, plain] = await freePorts(3);
      const target = `127.0.0.1:${(echo.address() as AddressInfo).port}`;
      const server = run([
        serverEngine,
        '--dir',
        join(dir, `stunnel-${agree}`),
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
        target,
      ]);
      await eventually(() => server.some((e) => e['event'] === 'listening'), 60_000, 'the server side');
      const client = run([
        'tunnel',
        '--role',
        'client',
        '--manifest',
        manifest,
        '--sae',
        'sae-a1',
        '--peer',
        'sae-b1',
        '--agree',
        `127.0.0.1:${agree}`,
        '--listen',
        `127.0.0.1:${plain}`,
        '--server',
        `127.0.0.1:${tls}`,
      ]);
      await eventually(() => client.some((e) => e['event'] === 'listening'), 60_000, 'the client side');

      const data = randomBytes(100_000);
      const back = await new Promise<Buffer>((resolve, reject) => {
        const s = connect(plain!, '127.0.0.1', () => s.write(data));
        const chunks: Buffer[] = [];
        s.on('data', (d: Buffer) => {
          chunks.push(d);
          if (Buffer.concat(chunks).length >= data.length) {
            s.end();
            resolve(Buffer.concat(chunks));
          }
        });
        s.on('error', reject);
      });
      assert.ok(back.equals(data));
      const keyId = client.find((e) => e['event'] === 'key')!['key_ID'];
      assert.equal(client.find((e) => e['event'] === 'connection')!['key_ID'], keyId);
      assert.equal(client.find((e) => e['event'] === 'connection')!['mode'], 'psk_ke');
      assert.ok(
        server.some((e) => e['event'] === 'key' && e['key_ID'] === keyId),
        'the server side agreed the same key',
      );
      if (serverEngine === 'tunnel') {
        await eventually(() => server.some((e) => e['event'] === 'connection'), 30_000);
        assert.equal(server.find((e) => e['event'] === 'connection')!['key_ID'], keyId);
      }
      // Both sides told their KMEs which key they use, for the operator dashboard.
      const m = JSON.parse(readFileSync(manifest, 'utf8')) as DemoManifest;
      const overview = async (kme: number, name: string) => {
        const op = new KmeClient({ url: m.kmes[kme]!.url, ca: m.ca, cert: m.operator!.cert, key: m.operator!.key });
        try {
          return (await op.overview()).integrations.find((i) => i.name === name);
        } finally {
          await op.close();
        }
      };
      const short = String(keyId).slice(0, 8);
      await eventually(
        async () => (await overview(0, `client:127.0.0.1:${plain}`))?.key_ID === short,
        30_000,
        'the client report',
      );
      const clientReport = (await overview(0, `client:127.0.0.1:${plain}`))!;
      assert.equal(clientReport.kind, 'tunnel');
      assert.equal(clientReport.sae, 'sae-a1');
      assert.equal(clientReport.peer, 'sae-b1');
      assert.equal(clientReport.state, 'up');
      // The default rotation: 300 s, the next key agreed at 80 % of that.
      // Agreed between the start of this test and now: due 240 s after that, however slow the machine.
      assert.ok(
        clientReport.rotates_at! >= started + 240_000 && clientReport.rotates_at! <= Date.now() + 240_000,
        'rotates 4 minutes after the key was agreed',
      );
      await eventually(
        async () => (await overview(1, `server:127.0.0.1:${tls}`))?.key_ID === short,
        30_000,
        'the server report',
      );
      assert.equal((await overview(1, `server:127.0.0.1:${tls}`))!.kind, serverEngine);
    });
  }
});
