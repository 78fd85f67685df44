import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, openSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import type { Manifest } from '../../src/cli/manifest.js';
import { archiveAndCheckLogs, recordDeliveredKeys } from '../helpers/log-leaks.js';
import { eventually } from '../helpers/two-kmes.js';

const BIN = join(process.cwd(), 'bin', 'qks.js');
const qks = (...args: string[]) => spawnSync(process.execPath, [BIN, ...args], { encoding: 'utf8', timeout: 60_000 });

type Keys = { keys: Array<{ key_ID: string; key: string }> };

/**
 * `qks init` writes the manifest the demo writes: with the KMEs it configured running as `qks kme`,
 * its DIR/manifest.json serves `qks status` and `qks sae` as they are shown in the docs.
 */
describe("qks init's manifest, with the KMEs it configured", () => {
  const dir = mkdtempSync(join(tmpdir(), 'qks-init-manifest-'));
  const site = join(dir, 'site');
  const kmes: ChildProcess[] = [];
  after(() => {
    for (const k of kmes) if (k.exitCode === null) k.kill('SIGKILL');
    try {
      archiveAndCheckLogs(site);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('serves qks status --once and qks sae get-key / get-key-with-ids (--key-id ID,ID); a refused SAE is told where to look', async () => {
    const init = qks('init', '--dir', site, '--ports', 'auto', '--rate', '1000000');
    assert.equal(init.status, 0, init.stderr);
    const manifestFile = join(site, 'manifest.json');
    const manifest = JSON.parse(readFileSync(manifestFile, 'utf8')) as Manifest;
    for (const k of manifest.kmes) {
      const log = openSync(join(site, `${k.id}.log`), 'w');
      kmes.push(spawn(process.execPath, [BIN, 'kme', '--config', k.config], { stdio: ['ignore', log, log] }));
    }
    const exits = kmes.map((k) => new Promise<number | null>((resolve) => k.once('exit', resolve)));

    await eventually(() => qks('status', '--once', '--manifest', manifestFile).status === 0, 30_000, 'both KMEs');
    const status = qks('status', '--once', '--manifest', manifestFile);
    assert.match(status.stdout, /: 2\/2 KMEs answering\n/);
    assert.match(status.stdout, /\nkme-a\s+up\s/);
    assert.match(status.stdout, /\nkme-b\s+up\s/);

    const who = ['--manifest', manifestFile];
    const getKey = () => qks('sae', 'get-key', ...who, '--sae', 'sae-a1', '--slave', 'sae-b1', '--number', '2');
    await eventually(() => getKey().status === 0, 30_000, 'key material');
    const got = getKey();
    assert.equal(got.status, 0, got.stderr);
    const ids = (JSON.parse(got.stdout) as Keys).keys.map((k) => k.key_ID);
    assert.equal(ids.length, 2);
    const fetched = qks(
      'sae',
      'get-key-with-ids',
      ...who,
      '--sae',
      'sae-b1',
      '--master',
      'sae-a1',
      '--key-id',
      ids.join(','),
      '--show-keys',
    );
    assert.equal(fetched.status, 0, fetched.stderr);
    const keys = (JSON.parse(fetched.stdout) as Keys).keys;
    recordDeliveredKeys(keys.map((k) => k.key));
    assert.deepEqual(
      keys.map((k) => k.key_ID),
      ids,
      'one --key-id with IDs separated by commas',
    );

    // An SAE at the KME that does not serve it: refused, and told where the reason is.
    const b1 = manifest.saes.find((s) => s.id === 'sae-b1')!;
    const elsewhere = qks(
      'sae',
      'status',
      '--sae',
      'sae-b1',
      '--kme',
      manifest.kmes[0]!.url,
      '--ca',
      manifest.ca,
      '--cert',
      b1.cert,
      '--key',
      b1.key,
      '--slave',
      'sae-a1',
    );
    assert.equal(elsewhere.status, 1);
    assert.equal(
      elsewhere.stderr,
      'qks sae status: unauthorized: the KME did not accept this SAE; its log says why (an SAE it does not serve, ' +
        'a revoked certificate); qks pki issue --sae ID --kme KME registers a new SAE at its KME\n',
    );
    assert.match(readFileSync(join(site, 'kme-a.log'), 'utf8'), /"reason":"SAE sae-b1 is not served by this KME"/);

    for (const k of kmes) k.kill('SIGTERM');
    assert.deepEqual(await Promise.all(exits), [0, 0], 'both KMEs stop cleanly');
  });
});
