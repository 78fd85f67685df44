import assert from 'node:assert/strict';
import { archiveAndCheckLogs } from '../helpers/log-leaks.js';
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import type { DemoManifest } from '../../src/cli/demo.js';
import { portAnswers } from '../../src/cli/ports.js';
import { expectedSecretPerPulse } from '../../src/physics/detector.js';
import type { LinkStats } from '../../src/sources/key-source.js';
import { DEFAULT_QKD } from '../../src/sources/qkd/settings.js';
import { TestClient } from '../helpers/sae-client.js';
import { eventually } from '../helpers/two-kmes.js';
import { assertSameKeys } from '../helpers/redact.js';

const BIN = join(process.cwd(), 'bin', 'qks.js');

describe('qks demo', () => {
  const dir = mkdtempSync(join(tmpdir(), 'qks-demo-test-'));
  after(() => {
    archiveAndCheckLogs(dir);
    rmSync(dir, { recursive: true, force: true });
  });

  it('runs two KMEs, writes the manifest when ready, and exits cleanly on SIGINT', async () => {
    const manifestFile = join(dir, 'manifest.json');
    const demo = spawn(process.execPath, [BIN, 'demo', '--dir', join(dir, 'site'), '--manifest', manifestFile], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    demo.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    const exited = new Promise<number | null>((resolve) => demo.on('exit', (code) => resolve(code)));
    try {
      await eventually(() => existsSync(manifestFile), 30_000, 'the demo manifest');
      const manifest = JSON.parse(readFileSync(manifestFile, 'utf8')) as DemoManifest;
      assert.equal(manifest.kmes.length, 2);
      assert.ok(manifest.saes.filter((s) => s.kme === manifest.kmes[0]!.id).length >= 2);
      assert.ok(manifest.saes.filter((s) => s.kme === manifest.kmes[1]!.id).length >= 2);
      for (const path of [manifest.ca, ...manifest.saes.flatMap((s) => [s.cert, s.key])]) {
        assert.ok(path.startsWith('/') && existsSync(path), `${path} is an absolute path that exists`);
      }
      // The pipe may hand over the printed lines a moment after the manifest appears.
      await eventually(() => /curl/.test(stdout), 5_000, 'the demo printing how to try it');

      const [kmeA, kmeB] = manifest.kmes;
      const master = manifest.saes.find((s) => s.kme === kmeA!.id)!;
      const slave = manifest.saes.find((s) => s.kme === kmeB!.id)!;
      const a = new TestClient(kmeA!.url, { ca: manifest.ca, cert: master.cert, key: master.key });
      const b = new TestClient(kmeB!.url, { ca: manifest.ca, cert: slave.cert, key: slave.key });
      await eventually(
        async () =>
          ((await a.get(`/api/v1/keys/${slave.id}/status`)).body as { stored_key_count: number }).stored_key_count > 0,
        10_000,
        'key material',
      );
      // The default link is the QKD simulator: the pool grows at the rate its post-processing
      // reports (each KME owns every other block; one 256-bit key per block).
      const count = async () =>
        ((await a.get(`/api/v1/keys/${slave.id}/status`)).body as { stored_key_count: number }).stored_key_count;
      const source = async () =>
        ((await a.get('/api/v1/information/info')).body as { key_sources: Array<{ kind: string; stats?: LinkStats }> })
          .key_sources[0]!;
      assert.equal((await source()).kind, 'qkd-simulator');
      const [t0, c0] = [Date.now(), await count()];
      await new Promise((r) => setTimeout(r, 6000));
      const [t1, c1] = [Date.now(), await count()];
      const { stats } = await source();
      const measured = (c1 - c0) / ((t1 - t0) / 1000);
      const reported = stats!.secretBps / 256 / 2;
      assert.ok(stats!.secretBps > 0 && stats!.framesDone > 0);
      assert.ok(measured > 0.5 * reported && measured < 1.6 * reported, `${measured} keys/s, link says ${reported}`);
      // Below the asymptotic bound with the detectors' dead time and afterpulsing; the finite-size
      // terms of 0.5 s frames take most of the rest (docs/qkd-link.md).
      const p = DEFAULT_QKD.physics;
      const bound = expectedSecretPerPulse(p) * p.repetitionRateHz;
      assert.ok(stats!.secretBps < bound && stats!.secretBps > 0.1 * bound, `${stats!.secretBps} bit/s vs ${bound}`);

      const got = await a.get(`/api/v1/keys/${slave.id}/enc_keys?number=1`);
      assert.equal(got.status, 200);
      const key = (got.body as { keys: Array<{ key_ID: string; key: string }> }).keys[0]!;
      const fetched = await b.get(`/api/v1/keys/${master.id}/dec_keys?key_ID=${key.key_ID}`);
      assert.equal(fetched.status, 200);
      assert.deepEqual(Object.keys(fetched.body as object), ['keys']);
      assertSameKeys((fetched.body as { keys: Array<{ key_ID: string; key: string }> }).keys, [key]);
      await Promise.all([a.close(), b.close()]);

      demo.kill('SIGINT');
      assert.equal(await exited, 0, 'exit code after SIGINT');
      assert.ok(!stdout.includes(key.key), 'key bytes never reach the demo output');
      for (const k of manifest.kmes) assert.ok(!readFileSync(k.log!, 'utf8').includes(key.key), 'nor its logs');
    } finally {
      demo.kill('SIGKILL');
    }
  });

  it('exits cleanly on SIGTERM, its KMEs stopped', async () => {
    const manifestFile = join(dir, 'manifest-term.json');
    const demo = spawn(process.execPath, [BIN, 'demo', '--dir', join(dir, 'site-term'), '--manifest', manifestFile], {
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    let stderr = '';
    demo.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const exited = new Promise<number | null>((resolve) => demo.on('exit', (code) => resolve(code)));
    try {
      await eventually(() => existsSync(manifestFile), 30_000, 'the demo manifest');
      const manifest = JSON.parse(readFileSync(manifestFile, 'utf8')) as DemoManifest;
      const ports = manifest.kmes.map((k) => Number(new URL(k.url).port));
      for (const port of ports) assert.ok(await portAnswers(port), `KME on ${port} is up`);
      const started = Date.now();
      demo.kill('SIGTERM');
      assert.equal(await exited, 0, `exit code after SIGTERM (${stderr.trim()})`);
      assert.ok(Date.now() - started < 10_000, 'promptly');
      for (const port of ports) assert.equal(await portAnswers(port), false, `KME on ${port} stopped`);
    } finally {
      demo.kill('SIGKILL');
    }
  });

  it('runs a kept --dir again on new ports, and refuses a directory or flags that do not fit', async () => {
    const site = join(dir, 'kept');
    const run = async () => {
      const manifestFile = join(site, 'manifest.json');
      rmSync(manifestFile, { force: true });
      const demo = spawn(process.execPath, [BIN, 'demo', '--dir', site, '--rate', '1000000'], { stdio: 'ignore' });
      const exited = new Promise<number | null>((resolve) => demo.on('exit', (code) => resolve(code)));
      try {
        await eventually(() => existsSync(manifestFile), 30_000, 'the demo manifest');
        const manifest = JSON.parse(readFileSync(manifestFile, 'utf8')) as DemoManifest;
        const [a, b] = manifest.saes.filter((s) => s.id === 'sae-a1' || s.id === 'sae-b1');
        const client = new TestClient(manifest.kmes[0]!.url, { ca: manifest.ca, cert: a!.cert, key: a!.key });
        await eventually(async () => (await client.get(`/api/v1/keys/${b!.id}/status`)).status === 200, 10_000, 'up');
        await client.close();
        demo.kill('SIGINT');
        assert.equal(await exited, 0);
        return manifest;
      } finally {
        demo.kill('SIGKILL');
      }
    };
    const first = await run();
    const second = await run();
    assert.equal(second.ca, first.ca, 'the same CA: the deployment was kept');
    assert.deepEqual(
      second.saes.map((s) => s.cert),
      first.saes.map((s) => s.cert),
    );
    assert.ok(existsSync(site), 'a kept directory stays');

    const refused = (args: string[]) => spawnSync(process.execPath, [BIN, 'demo', ...args], { encoding: 'utf8' });
    const qkd = refused(['--dir', site, '--source', 'qkd']);
    assert.equal(qkd.status, 2);
    assert.equal(
      qkd.stderr,
      `qks demo: the demo kept in ${site} has a simulated link with other settings; run it without link options, or use a new --dir\n`,
    );
    const other = join(dir, 'not-a-demo');
    mkdirSync(other);
    writeFileSync(join(other, 'notes.txt'), 'mine\n');
    const notDemo = refused(['--dir', other]);
    assert.equal(notDemo.status, 2);
    assert.equal(
      notDemo.stderr,
      `qks demo: --dir ${other} is not empty and holds no QKS demo (kme-a.json, kme-b.json); choose a new or empty directory\n`,
    );
    assert.equal(readFileSync(join(other, 'notes.txt'), 'utf8'), 'mine\n', 'nothing of it touched');
  });

  it('stopped during its start, still stops what it started and deletes its temporary directory', async () => {
    const tmp = join(dir, 'tmp-early');
    mkdirSync(tmp);
    const demo = spawn(process.execPath, [BIN, 'demo', '--rate', '1000000'], {
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, TMPDIR: tmp },
    });
    const exited = new Promise<number | null>((resolve) => demo.on('exit', (code) => resolve(code)));
    try {
      // The moment its directory exists, before its KMEs are up: Ctrl-C.
      await eventually(
        () => readdirSync(tmp).some((f) => f.startsWith('qks-demo-')),
        30_000,
        'the temporary directory',
      );
      demo.kill('SIGINT');
      assert.equal(await exited, 0);
      assert.deepEqual(readdirSync(tmp), [], 'nothing left, keys included');
    } finally {
      demo.kill('SIGKILL');
    }
  });
});
