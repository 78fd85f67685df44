import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import type { Manifest } from '../../src/cli/manifest.js';
import { archiveAndCheckLogs, recordDeliveredKeys } from '../helpers/log-leaks.js';
import { eventually } from '../helpers/two-kmes.js';

/**
 * A new user's first minutes: a clone of this repository, the README's first command exactly as
 * written, then every command the demo prints, exactly as printed, each checked by what it does.
 * (This tests the committed HEAD: the clone has no uncommitted changes.)
 */
const README_SETUP = /^```sh\n(.*)\n(.*)\n```/m;

interface Run {
  code: number | null;
  stdout: string;
}

/** Runs a printed command line in a shell, as a user pastes it; output is not echoed (keys). */
function shell(line: string, cwd: string, timeoutMs = 60_000): Run {
  const r = spawnSync('sh', ['-c', line], { cwd, encoding: 'utf8', timeout: timeoutMs });
  return { code: r.status, stdout: r.stdout };
}

const withTimeout = <T>(p: Promise<T>, ms: number): Promise<T | 'timed out'> =>
  Promise.race([p, new Promise<'timed out'>((r) => setTimeout(() => r('timed out'), ms).unref())]);

type Keys = { keys: Array<{ key_ID: string; key: string }> };

describe('a fresh clone, as the README says', () => {
  const root = mkdtempSync(join(tmpdir(), 'qks-fresh-'));
  const clone = join(root, 'qks');
  let demo: ChildProcess | undefined;
  const groups: number[] = [];
  after(() => {
    // process.kill, never the kill(1) program: procps-ng 4.0.2 reads `kill -KILL -18123` as
    // `kill -KILL -1` (its first digit only), which kills every process on the machine.
    for (const pid of groups) {
      try {
        process.kill(-pid, 'SIGKILL');
      } catch {
        // already gone
      }
    }
    rmSync(root, { recursive: true, force: true });
  });

  // npm ci (a native build) and two TypeScript builds: longer than the suite's default limit.
  it(
    'npm ci && npm run demo, then every command the demo prints works as printed; Ctrl-C exits 0',
    { timeout: 900_000 },
    async () => {
      const readme = readFileSync('README.md', 'utf8');
      const [, first, second] = README_SETUP.exec(readme) ?? [];
      assert.equal(first?.replace(/\s+#.*$/, ''), 'npm ci && npm run demo', 'the README starts with the main job');
      assert.equal(second?.replace(/\s+#.*$/, ''), 'npm ci && npm test', 'and the test command');
      assert.match(readFileSync('.ci/run', 'utf8'), /^npm ci\nnpm test$/m, 'CI runs the README test command');

      // A clone of the checkout; a checkout that is no git work tree is copied without what npm ci makes.
      const inGit =
        spawnSync('git', ['rev-parse', '--is-inside-work-tree'], { encoding: 'utf8' }).stdout.trim() === 'true';
      const cloned = inGit
        ? spawnSync('git', ['clone', '--quiet', '--no-hardlinks', process.cwd(), clone], { encoding: 'utf8' })
        : spawnSync(
            'sh',
            [
              '-c',
              `mkdir ${clone} && tar -c --exclude=./node_modules --exclude=./dist --exclude=./build . | tar -x -C ${clone}`,
            ],
            { encoding: 'utf8' },
          );
      assert.equal(cloned.status, 0, cloned.stderr);
      // The first command as written; its own process group, as a terminal gives it, for Ctrl-C.
      // bash, like a user's shell, lets npm handle Ctrl-C and reports how npm ended (dash would die of it).
      demo = spawn('bash', ['-c', first!.replace(/\s+#.*$/, '')], {
        cwd: clone,
        detached: true,
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      groups.push(demo.pid!);
      let out = '';
      let err = '';
      demo.stdout!.on('data', (d: Buffer) => (out += d.toString()));
      demo.stderr!.on('data', (d: Buffer) => (err += d.toString()));
      const exited = new Promise<number | null>((resolve) => demo!.on('exit', (code) => resolve(code)));
      await eventually(() => out.includes('Press Ctrl-C to stop.') || demo!.exitCode !== null, 600_000, 'the demo');
      assert.ok(out.includes('Press Ctrl-C'), `the demo started (stderr: ${err.slice(-2000)})`);
      assert.doesNotMatch(err, /EBADENGINE/, 'npm ci warns of no engine mismatch');

      const printed = out.split('\n').map((l) => l.trim());
      const commands = printed.filter((l) => /^(curl|node \S+\/bin\/qks\.js|qks) /.test(l));
      const terminal = printed.find((l) => l.startsWith('in a terminal: '))!.slice('in a terminal: '.length);
      const dashboard = /^Dashboard .*: (http\S+)$/.exec(printed.find((l) => l.startsWith('Dashboard'))!)![1]!;
      assert.equal(commands.length, 5, 'three curl lines and two qks sae lines');
      const [status, encKeys, decKeys, getKey, getKeyWithIds] = commands as [string, string, string, string, string];
      const manifestFile = /--manifest (\S+)/.exec(getKey)![1]!;
      const manifest = JSON.parse(readFileSync(manifestFile, 'utf8')) as Manifest;
      const files = manifest.ca.replace(/\/pki\/.*$/, '');

      try {
        await eventually(
          () =>
            (JSON.parse(shell(status, clone).stdout || '{}') as { stored_key_count?: number }).stored_key_count! > 0,
          120_000,
          'key material (the status line)',
        );
        const got = shell(encKeys, clone);
        assert.equal(got.code, 0, 'enc_keys line');
        const key = (JSON.parse(got.stdout) as Keys).keys[0]!;
        recordDeliveredKeys([key.key]);
        const fetched = shell(decKeys.replace('<key_ID from above>', key.key_ID), clone);
        assert.equal(fetched.code, 0, 'dec_keys line');
        const same = (JSON.parse(fetched.stdout) as Keys).keys[0]!;
        assert.equal(same.key_ID, key.key_ID);
        assert.ok(same.key === key.key, 'the slave got the same key');

        const viaSae = shell(getKey, clone);
        assert.equal(viaSae.code, 0, `qks sae get-key as printed: ${getKey}`);
        const saeKey = (JSON.parse(viaSae.stdout) as Keys).keys[0]!;
        assert.equal(saeKey.key, '(hidden: use --show-keys)');
        const viaIds = shell(getKeyWithIds.replace('<key_ID>', saeKey.key_ID), clone);
        assert.equal(viaIds.code, 0, 'qks sae get-key-with-ids as printed');
        assert.equal((JSON.parse(viaIds.stdout) as Keys).keys[0]!.key_ID, saeKey.key_ID);

        // qks status redraws until Ctrl-C: it shows both KMEs up, then stops cleanly.
        // `exec`: the shell is the user's terminal, not a process of its own between Ctrl-C and qks.
        const watch = spawn('sh', ['-c', `exec ${terminal}`], {
          cwd: clone,
          detached: true,
          stdio: ['ignore', 'pipe', 'pipe'],
        });
        groups.push(watch.pid!);
        let frames = '';
        watch.stdout.on('data', (d: Buffer) => (frames += d.toString()));
        const watchExit = new Promise<number | null>((resolve) => watch.on('exit', (code) => resolve(code)));
        await eventually(() => /kme-a/.test(frames) && /kme-b/.test(frames), 30_000, 'qks status drawing');
        process.kill(-watch.pid!, 'SIGINT');
        assert.equal(await withTimeout(watchExit, 20_000), 0, 'qks status exits 0 on Ctrl-C');
        assert.doesNotMatch(frames, /unreachable|refused/);

        const page = await fetch(dashboard);
        assert.equal(page.status, 200, 'the dashboard URL as printed');
        await page.body?.cancel();
      } finally {
        archiveAndCheckLogs(files);
      }

      // Ctrl-C: SIGINT to the whole process group, npm and all.
      process.kill(-demo.pid!, 'SIGINT');
      assert.equal(await withTimeout(exited, 30_000), 0, 'npm run demo exits 0 on Ctrl-C');
      assert.match(out, new RegExp(`deleted ${files}`));
      assert.equal(existsSync(files), false, 'the temporary deployment (master and CA keys) is gone');
    },
  );
});
