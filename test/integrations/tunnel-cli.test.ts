import assert from 'node:assert/strict';
import { archiveAndCheckLogs } from '../helpers/log-leaks.js';
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { connect, type AddressInfo, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { after, before, describe, it } from 'node:test';
import { freePorts } from '../../src/cli/ports.js';
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

  for (const serverEngine of ['tunnel', 'stunnel']) {
    it(`carries a TCP stream over TLS 1.3 keyed by the key both sides agreed (server: qks ${serverEngine})`, async () => {
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
      await eventually(() => server.some((e) => e['event'] === 'listening'), 10_000, 'the server side');
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
      await eventually(() => client.some((e) => e['event'] === 'listening'), 10_000, 'the client side');

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
        await eventually(() => server.some((e) => e['event'] === 'connection'), 5000);
        assert.equal(server.find((e) => e['event'] === 'connection')!['key_ID'], keyId);
      }
    });
  }
});
