import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import type { DemoManifest } from '../../src/cli/demo.js';
import { archiveAndCheckLogs } from '../helpers/log-leaks.js';
import { postgresSkip } from '../helpers/postgres.js';
import { assertSameKeys } from '../helpers/redact.js';
import { TestClient } from '../helpers/sae-client.js';
import { eventually } from '../helpers/two-kmes.js';

const BIN = join(process.cwd(), 'bin', 'qks.js');
const qks = (...args: string[]) => spawnSync(process.execPath, [BIN, ...args], { encoding: 'utf8', timeout: 60_000 });

/** Command lines of the processes running now that mention `text`. */
const processesWith = (text: string) =>
  readdirSync('/proc')
    .filter((p) => /^\d+$/.test(p))
    .flatMap((p) => {
      try {
        return [readFileSync(`/proc/${p}/cmdline`, 'utf8').replace(/\0/g, ' ')];
      } catch {
        return [];
      }
    })
    .filter((cmd) => cmd.includes(text));

describe('qks demo --replicas', postgresSkip(), () => {
  const dir = mkdtempSync(join(tmpdir(), 'qks-demo-replicas-'));
  after(() => {
    archiveAndCheckLogs(dir);
    rmSync(dir, { recursive: true, force: true });
  });

  it('refuses what replicas cannot run, in one line', () => {
    for (const [args, message] of [
      [['--replicas', '1'], '--replicas must be a whole number, 2 or more'],
      [['--replicas', '2', '--rate', '1000', '--distance-km', '5'], '--distance-km applies to --source qkd only'],
    ] as const) {
      const run = qks('demo', ...args);
      assert.equal(run.status, 2);
      assert.equal(run.stderr, `qks demo: ${message} (qks demo --help)\n`);
    }
    // Without HAProxy on the PATH the demo says what to install, and deletes what it made.
    const run = spawnSync(process.execPath, [BIN, 'demo', '--replicas', '2'], {
      encoding: 'utf8',
      timeout: 60_000,
      env: { ...process.env, PATH: '/nonexistent' },
    });
    assert.equal(run.status, 2, run.stderr);
    assert.equal(
      run.stderr,
      'qks demo: --replicas needs HAProxy in front of each site, and it is not installed: apt-get install haproxy\n',
    );
    const made = /^deleted (\S+) /m.exec(run.stdout)?.[1];
    assert.ok(made && !existsSync(made), `the temporary directory went: ${run.stdout}`);
  });

  for (const [what, link] of [
    ['simulated links', []],
    ['the QKD link simulator', ['--source', 'qkd', '--distance-km', '5']],
  ] as const)
    it(`runs each KME as replicas on its own PostgreSQL behind HAProxy with ${what}, and leaves nothing running after Ctrl-C`, async () => {
      const site = join(dir, `site-${link.length}`);
      const manifestFile = join(site, 'manifest.json');
      const demo = spawn(process.execPath, [BIN, 'demo', '--dir', site, '--replicas', '2', ...link], {
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      let stdout = '';
      demo.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
      const exited = new Promise<number | null>((resolve) => demo.on('exit', (code) => resolve(code)));
      try {
        await eventually(() => existsSync(manifestFile), 60_000, 'the demo manifest');
        await eventually(() => /Ctrl-C/.test(stdout), 5_000, 'the demo printing how to try it');
        assert.match(stdout, /each KME: 2 replicas sharing a PostgreSQL database of the demo's own, behind HAProxy/);
        assert.equal(processesWith(`haproxy -db -f ${site}/haproxy-kme-`).length, 2, 'one HAProxy per site');
        assert.equal(processesWith('qks-demo-pg-').length >= 1, true, "the demo's PostgreSQL");

        const manifest = JSON.parse(readFileSync(manifestFile, 'utf8')) as DemoManifest;
        const [kmeA, kmeB] = manifest.kmes;
        const sae = (id: string, url: string) => {
          const s = manifest.saes.find((x) => x.id === id)!;
          return new TestClient(url, { ca: manifest.ca, cert: s.cert, key: s.key });
        };
        const [a, b] = [sae('sae-a1', kmeA!.url), sae('sae-b1', kmeB!.url)];
        for (let i = 0; i < 4; i++) {
          // The QKD link makes its first key some frames after the KMEs start.
          let got = await a.get('/api/v1/keys/sae-b1/enc_keys?number=1');
          for (let tries = 0; got.status === 503 && tries < 600; tries++) {
            await new Promise((r) => setTimeout(r, 100));
            got = await a.get('/api/v1/keys/sae-b1/enc_keys?number=1');
          }
          assert.equal(got.status, 200, got.text);
          const key = (got.body as { keys: Array<{ key_ID: string; key: string }> }).keys[0]!;
          const fetched = await b.get(`/api/v1/keys/sae-a1/dec_keys?key_ID=${key.key_ID}`);
          assert.equal(fetched.status, 200, fetched.text);
          assertSameKeys((fetched.body as { keys: Array<{ key_ID: string; key: string }> }).keys, [key]);
        }
        // Whichever replica answers, the link is up: it runs at one of them, the other follows.
        for (let i = 0; i < 4; i++) {
          const info = (await a.get('/api/v1/information/info')).body as {
            key_sources: Array<{ state: string; kind: string }>;
          };
          assert.equal(info.key_sources[0]!.state, 'running');
          if (link.length > 0) assert.equal(info.key_sources[0]!.kind, 'qkd-simulator');
        }
        await Promise.all([a.close(), b.close()]);

        demo.kill('SIGINT');
        assert.equal(await exited, 0, 'exit code after SIGINT');
        assert.deepEqual(processesWith(`${site}/haproxy-kme-`), [], 'no HAProxy left');
        assert.deepEqual(processesWith('qks-demo-pg-'), [], 'no PostgreSQL left');
      } finally {
        demo.kill('SIGKILL');
      }
    });
});
