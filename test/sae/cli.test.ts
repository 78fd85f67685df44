import assert from 'node:assert/strict';
import { archiveAndCheckLogs } from '../helpers/log-leaks.js';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { after, before, describe, it } from 'node:test';
import { freePorts } from '../../src/cli/ports.js';
import { eventually } from '../helpers/two-kmes.js';

const BIN = join(process.cwd(), 'bin', 'qks.js');

describe('qks sae against the demo network', () => {
  const dir = mkdtempSync(join(tmpdir(), 'qks-sae-cli-'));
  const manifest = join(dir, 'manifest.json');
  const children: ChildProcess[] = [];
  const qks = (...args: string[]) =>
    spawnSync(process.execPath, [BIN, 'sae', ...args, '--manifest', manifest], { encoding: 'utf8' });
  const json = (out: string) => JSON.parse(out) as Record<string, unknown>;

  before(async () => {
    children.push(
      spawn(process.execPath, [BIN, 'demo', '--dir', join(dir, 'site'), '--manifest', manifest], { stdio: 'ignore' }),
    );
    await eventually(() => existsSync(manifest), 30_000, 'the demo');
    await eventually(
      () => (json(qks('status', '--sae', 'sae-a1', '--slave', 'sae-b1').stdout)['stored_key_count'] as number) > 20,
      10_000,
    );
  });
  after(() => {
    for (const c of children) c.kill('SIGKILL');
    archiveAndCheckLogs(dir);
    rmSync(dir, { recursive: true, force: true });
  });

  it('status, get-key and get-key-with-ids print JSON; key bytes only with --show-keys', () => {
    const status = json(qks('status', '--sae', 'sae-a1', '--slave', 'sae-b1').stdout);
    assert.equal(status['target_KME_ID'], 'kme-b');
    const hidden = json(qks('get-key', '--sae', 'sae-a1', '--slave', 'sae-b1', '--number', '2').stdout) as {
      keys: Array<{ key_ID: string; key: string }>;
    };
    assert.equal(hidden.keys.length, 2);
    assert.ok(
      hidden.keys.every((k) => !/^[A-Za-z0-9+/]{43}=$/.test(k.key)),
      'no key bytes without --show-keys',
    );
    const shown = json(
      qks(
        'get-key-with-ids',
        '--sae',
        'sae-b1',
        '--master',
        'sae-a1',
        '--key-id',
        hidden.keys[0]!.key_ID,
        '--key-id',
        hidden.keys[1]!.key_ID,
        '--show-keys',
      ).stdout,
    ) as { keys: Array<{ key: string }> };
    assert.ok(shown.keys.every((k) => Buffer.from(k.key, 'base64').length === 32));
    const refused = qks('get-key', '--sae', 'sae-a1', '--slave', 'sae-b1', '--size', '7');
    assert.notEqual(refused.status, 0);
    assert.match(refused.stderr, /size shall be a multiple of 8/);
  });

  it('agree: responder and initiator processes print the same key IDs, no key bytes', async () => {
    const [port] = await freePorts(1);
    const responder = spawn(process.execPath, [
      BIN,
      'sae',
      'agree',
      '--role',
      'responder',
      '--manifest',
      manifest,
      '--sae',
      'sae-b1',
      '--peer',
      'sae-a1',
      '--listen',
      `127.0.0.1:${port}`,
    ]);
    children.push(responder);
    const lines: Array<Record<string, unknown>> = [];
    let raw = '';
    createInterface({ input: responder.stdout! }).on('line', (l) => {
      raw += l;
      lines.push(json(l));
    });
    await eventually(() => lines.some((l) => l['event'] === 'listening'), 10_000, 'the responder');
    const init = qks(
      'agree',
      '--role',
      'initiator',
      '--sae',
      'sae-a1',
      '--peer',
      'sae-b1',
      '--connect',
      `127.0.0.1:${port}`,
      '--once',
      '--number',
      '2',
    );
    assert.equal(init.status, 0, init.stderr);
    const mine = json(init.stdout);
    await eventually(() => lines.some((l) => l['event'] === 'agreed'), 5000, 'the responder to agree');
    const theirs = lines.find((l) => l['event'] === 'agreed')!;
    assert.deepEqual(theirs['key_IDs'], mine['key_IDs']);
    assert.equal((mine['key_IDs'] as string[]).length, 2);
    assert.ok(!('keys' in mine) && !('keys' in theirs), 'no key bytes without --show-keys');
    assert.ok(!/[A-Za-z0-9+/]{43}=/.test(init.stdout + raw));
    responder.kill('SIGTERM');
  });

  it('refuses bad usage with a clear message', () => {
    const run = spawnSync(process.execPath, [BIN, 'sae', 'get-key', '--sae', 'sae-a1'], { encoding: 'utf8' });
    assert.equal(run.status, 2);
    assert.match(run.stderr, /give --manifest, or --kme/);
  });
});
