import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { freePorts, portAnswers } from '../../src/cli/ports.js';
import { eventually } from '../helpers/two-kmes.js';

const BIN = join(process.cwd(), 'bin', 'qks.js');
const UNITS = join(process.cwd(), 'packaging', 'systemd');

/**
 * The unit files in packaging/systemd/, checked by systemd's own `systemd-analyze verify`, and the
 * ready notice `Type=notify` waits for, received on a real notify socket. (PID 1 here is not
 * systemd, so no unit is started for real: docs/operations.md says what that leaves unexercised.)
 */
describe('systemd units', () => {
  const dir = mkdtempSync(join(tmpdir(), 'qks-systemd-'));
  const children: ChildProcess[] = [];
  after(() => {
    for (const c of children) c.kill('SIGKILL');
    rmSync(dir, { recursive: true, force: true });
  });

  it('every unit passes systemd-analyze verify without a warning, with the hardening the docs promise', () => {
    const units = readdirSync(UNITS).filter((f) => f.endsWith('.service'));
    assert.deepEqual(units.sort(), [
      'qks-ipsec@.service',
      'qks-kme@.service',
      'qks-stunnel@.service',
      'qks-tunnel@.service',
    ]);
    const checked = join(dir, 'units');
    mkdirSync(checked);
    for (const unit of units) {
      const text = readFileSync(join(UNITS, unit), 'utf8');
      for (const option of [
        'NoNewPrivileges=yes',
        'ProtectSystem=strict',
        'Type=notify',
        'ExecReload=/bin/kill -HUP $MAINPID',
      ]) {
        assert.ok(text.includes(`\n${option}\n`), `${unit}: ${option}`);
      }
      if (unit !== 'qks-ipsec@.service') {
        assert.match(text, /\nUser=qks\n/, `${unit} runs as its own user`);
        assert.match(text, /\nStateDirectoryMode=0700\n/, `${unit}: only the service writes its data`);
      }
      // Where this checkout and this Node are, so that verify finds the programs it names.
      const here = text.replaceAll('/opt/qks', process.cwd()).replaceAll('/usr/bin/node', process.execPath);
      const instance = join(checked, unit.replace('@', '@test'));
      writeFileSync(instance, here);
      const verify = spawnSync('systemd-analyze', ['verify', '--man=no', instance], { encoding: 'utf8' });
      assert.equal(verify.status, 0, `${unit}: ${verify.stderr}`);
      assert.equal(verify.stderr, '', `${unit}: no warnings`);
    }
  });

  it('qks kme and qks tunnel tell the notify socket READY=1 once they serve, as Type=notify waits for', async () => {
    const site = join(dir, 'site');
    const init = spawnSync(process.execPath, [BIN, 'init', '--dir', site, '--kmes', 'kme-x', '--ports', 'auto'], {
      encoding: 'utf8',
    });
    assert.equal(init.status, 0, init.stderr);
    const socket = join(dir, 'notify.sock');
    const received = join(dir, 'notices');
    // A Unix datagram socket, as systemd's: Node has none, Python does.
    const listener = spawn('python3', [
      '-c',
      `import socket,sys
s=socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM); s.bind(sys.argv[1])
while True:
    m=s.recv(4096); open(sys.argv[2],'ab').write(m+b'\\n---\\n')`,
      socket,
      received,
    ]);
    children.push(listener);
    await eventually(() => readdirSync(dir).includes('notify.sock'), 5000, 'the notify socket');
    const kme = spawn(process.execPath, [BIN, 'kme', '--config', join(site, 'kme-x.json')], {
      env: { ...process.env, NOTIFY_SOCKET: socket },
      stdio: 'ignore',
    });
    children.push(kme);
    await eventually(() => readdirSync(dir).includes('notices'), 30_000, 'a notice');
    const notice = readFileSync(received, 'utf8');
    assert.match(notice, /READY=1/);
    assert.match(notice, new RegExp(`MAINPID=${kme.pid}`));

    // qks tunnel (the same for stunnel, ipsec): its notice once it listens, and not before.
    const [agree, tls] = await freePorts(2);
    const tunnel = spawn(
      process.execPath,
      [BIN, 'tunnel', '--role', 'server', '--manifest', join(site, 'manifest.json'), '--sae', 'sae-x2']
        .concat(['--peer', 'sae-x1', '--agree', `127.0.0.1:${agree}`, '--listen', `127.0.0.1:${tls}`])
        .concat(['--target', '127.0.0.1:9']),
      { env: { ...process.env, NOTIFY_SOCKET: socket }, stdio: 'ignore' },
    );
    children.push(tunnel);
    await eventually(
      () => readFileSync(received, 'utf8').includes(`MAINPID=${tunnel.pid}`),
      30_000,
      "the tunnel's notice",
    );
    assert.ok(await portAnswers(tls!), 'the tunnel accepts once it said READY=1');
    tunnel.kill('SIGTERM');
    kme.kill('SIGTERM');
  });
});
