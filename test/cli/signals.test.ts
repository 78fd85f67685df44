import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { freePorts } from '../../src/cli/ports.js';
import { archiveAndCheckLogs } from '../helpers/log-leaks.js';
import { eventually } from '../helpers/two-kmes.js';

const BIN = join(process.cwd(), 'bin', 'qks.js');

/**
 * One meaning per signal for the long-running commands (docs/operations.md): SIGHUP never ends one,
 * SIGTERM ends each cleanly. (qks stunnel: test/integrations/stunnel-service.test.ts.)
 */
describe('SIGHUP and SIGTERM for every long-running command', () => {
  const dir = mkdtempSync(join(tmpdir(), 'qks-signals-'));
  const manifest = join(dir, 'manifest.json');
  const children: ChildProcess[] = [];
  const start = (args: string[]) => {
    const child = spawn(process.execPath, [BIN, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    children.push(child);
    let out = '';
    child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr!.on('data', (d: Buffer) => (out += d.toString()));
    return { child, out: () => out };
  };
  const exitOf = (child: ChildProcess) =>
    child.exitCode !== null || child.signalCode !== null
      ? Promise.resolve(child.exitCode)
      : new Promise<number | null>((r) => child.once('exit', (code) => r(code)));

  before(async () => {
    children.push(
      spawn(process.execPath, [BIN, 'demo', '--dir', join(dir, 'demo'), '--manifest', manifest, '--rate', '1000000'], {
        stdio: 'ignore',
      }),
    );
    await eventually(() => existsSync(manifest), 30_000, 'the demo');
  });
  after(() => {
    for (const c of children) c.kill('SIGKILL');
    archiveAndCheckLogs(dir);
    rmSync(dir, { recursive: true, force: true });
  });

  it('kme, tunnel server, agreement responder, SDN controller, dashboard and status live through SIGHUP and stop on SIGTERM', async () => {
    const site = join(dir, 'site');
    const init = spawnSync(process.execPath, [BIN, 'init', '--dir', site, '--kmes', 'kme-x', '--ports', 'auto'], {
      encoding: 'utf8',
    });
    assert.equal(init.status, 0, init.stderr);
    const [agree, tls, agree2, pcep] = await freePorts(4);
    // The controller of `qks init`, on a free PCEP port (4189 may be taken by another run).
    const controllerConfig = join(site, 'controller.json');
    const controller = JSON.parse(readFileSync(controllerConfig, 'utf8')) as { pcep: { port: number } };
    controller.pcep.port = pcep!;
    writeFileSync(controllerConfig, JSON.stringify(controller));
    const who = ['--manifest', manifest, '--sae', 'sae-b1', '--peer', 'sae-a1'];
    const running = {
      kme: start(['kme', '--config', join(site, 'kme-x.json')]),
      tunnel: start(
        ['tunnel', '--role', 'server', ...who, '--agree', `127.0.0.1:${agree}`].concat([
          '--listen',
          `127.0.0.1:${tls}`,
          '--target',
          '127.0.0.1:9',
        ]),
      ),
      responder: start(['sae', 'agree', '--role', 'responder', ...who, '--listen', `127.0.0.1:${agree2}`]),
      controller: start(['controller', '--config', controllerConfig]),
      dashboard: start(['dashboard', '--manifest', manifest]),
      status: start(['status', '--manifest', manifest, '--interval', '0.2']),
    };
    const ready: Record<keyof typeof running, RegExp> = {
      kme: /"msg":"KME started"|listening/,
      tunnel: /"event":"listening"/,
      responder: /"event":"listening"/,
      controller: /controller ready/,
      dashboard: /QKS dashboard: http/,
      status: /QKS network at/,
    };
    for (const [name, r] of Object.entries(running)) {
      await eventually(() => ready[name as keyof typeof running].test(r.out()), 30_000, `${name} ready`);
    }
    for (const r of Object.values(running)) r.child.kill('SIGHUP');
    await eventually(() => /SIGHUP: configuration re-read/.test(running.kme.out()), 10_000, 'the KME re-reading');
    await new Promise((r) => setTimeout(r, 1000));
    for (const [name, r] of Object.entries(running)) {
      assert.equal(r.child.exitCode, null, `${name} lives on after SIGHUP`);
      assert.equal(r.child.signalCode, null, `${name} lives on after SIGHUP`);
    }
    for (const r of Object.values(running)) r.child.kill('SIGTERM');
    for (const [name, r] of Object.entries(running)) assert.equal(await exitOf(r.child), 0, `${name} stops with 0`);
  });
});
