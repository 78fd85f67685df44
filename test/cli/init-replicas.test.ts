import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { Deployment } from '../../src/cli/init.js';
import type { Manifest } from '../../src/cli/manifest.js';
import { loadConfig } from '../../src/kme/config.js';
import { Haproxy } from '../helpers/haproxy.js';
import { KmeProcesses } from '../helpers/kme-process.js';
import { archiveAndCheckLogs } from '../helpers/log-leaks.js';
import { postgresSkip, startPostgres, type PgServer } from '../helpers/postgres.js';
import { TestClient } from '../helpers/sae-client.js';
import { eventually } from '../helpers/two-kmes.js';

const BIN = join(process.cwd(), 'bin', 'qks.js');
const qks = (...args: string[]) => spawnSync(process.execPath, [BIN, ...args], { encoding: 'utf8', timeout: 60_000 });

describe('qks init --replicas', postgresSkip(), () => {
  const dir = mkdtempSync(join(tmpdir(), 'qks-init-replicas-'));
  const site = join(dir, 'site');
  let pg: PgServer;
  let procs: KmeProcesses | undefined;
  const proxies: Haproxy[] = [];
  before(async () => {
    pg = await startPostgres();
  });
  after(async () => {
    await procs?.killAll();
    await Promise.all(proxies.map((p) => p.stop()));
    await pg?.stop();
    if (existsSync(site)) archiveAndCheckLogs(site);
    rmSync(dir, { recursive: true, force: true });
  });

  it('refuses what it cannot build, in one line, writing nothing', () => {
    for (const [args, message] of [
      [['--replicas', '2'], '--replicas needs --postgres URL: the replicas of a KME share its database'],
      [['--replicas', '1', '--postgres', 'postgres://h'], '--replicas must be a whole number, 2 or more'],
      [['--postgres', 'postgres://h'], '--postgres applies to --replicas only'],
      [['--replicas', '2', '--postgres', 'mysql://h'], '--postgres: the URL must begin postgres://'],
      [
        ['--replicas', '2', '--postgres', 'postgres://u:secret@h'],
        '--postgres: no password in the URL; use PGPASSWORD or ~/.pgpass',
      ],
    ] as const) {
      const run = qks('init', '--dir', join(dir, 'refused'), ...args);
      assert.equal(run.status, 2);
      assert.equal(run.stderr, `qks init: ${message} (qks init --help)\n`);
      assert.ok(!existsSync(join(dir, 'refused')), 'nothing written');
    }
  });

  it('writes replicas that serve keys behind HAProxy at the addresses of the manifest, run as printed', async () => {
    const run = qks(
      'init',
      ...['--dir', site, '--ports', 'auto', '--source', 'simulated', '--rate', '200000'],
      ...['--replicas', '2', '--postgres', `postgres://postgres@127.0.0.1:${pg.port}`],
    );
    assert.equal(run.status, 0, run.stderr);
    // Run exactly what it printed: the databases, one HAProxy per site, each replica.
    const manifest = JSON.parse(readFileSync(join(site, 'manifest.json'), 'utf8')) as Manifest;
    const replicas: Deployment['configs'][number][] = [];
    const haproxyFiles: Array<[string, string]> = [];
    for (const kme of ['kme-a', 'kme-b']) {
      const line = new RegExp(`^${kme}: create database (\\w+) .*; haproxy -f (\\S+)$`, 'm').exec(run.stdout);
      assert.ok(line, `${kme}'s line in:\n${run.stdout}`);
      await pg.sql(`CREATE DATABASE ${line[1]}`);
      const check = spawnSync('haproxy', ['-c', '-f', line[2]!], { encoding: 'utf8' });
      assert.equal(check.status, 0, `haproxy -c: ${check.stdout}${check.stderr}`);
      haproxyFiles.push([kme, line[2]!]);
      for (const m of run.stdout.matchAll(new RegExp(`^  ${kme} (r\\d): qks kme --config (\\S+)$`, 'gm'))) {
        replicas.push({ kme: `${kme}-${m[1]}`, file: m[2]!, config: loadConfig(m[2]!) });
      }
    }
    assert.equal(replicas.length, 4);
    procs = new KmeProcesses({ dir: site, configs: replicas } as unknown as Deployment);
    await Promise.all(replicas.map((r) => procs!.start(r.kme)));
    // HAProxy once the replicas listen: its first health checks find them up.
    for (const [kme, file] of haproxyFiles) {
      const config = loadConfig(join(site, `${kme}.json`));
      proxies.push(
        await Haproxy.run(file, [
          { host: config.sae_api.host, port: config.sae_api.port },
          { host: config.kme_api.host, port: config.kme_api.port },
        ]),
      );
    }
    // The SAEs use the manifest as before: its addresses are HAProxy's now.
    const sae = (id: string) => {
      const s = manifest.saes.find((x) => x.id === id)!;
      const url = manifest.kmes.find((k) => k.id === s.kme)!.url;
      return new TestClient(url, { ca: manifest.ca, cert: s.cert, key: s.key });
    };
    const [master, slave] = [sae('sae-a1'), sae('sae-b1')];
    let got: { status: number; body: unknown } = { status: 0, body: null };
    await eventually(
      // HAProxy marks a replica up after two health checks: until then, connections are closed.
      async () => (got = await master.get('/api/v1/keys/sae-b1/enc_keys?number=3').catch(() => got)).status === 200,
      20_000,
      'keys through HAProxy',
    );
    const keys = (got.body as { keys: Array<{ key_ID: string; key: string }> }).keys;
    const fetched = await slave.post('/api/v1/keys/sae-a1/dec_keys', {
      key_IDs: keys.map((k) => ({ key_ID: k.key_ID })),
    });
    assert.equal(fetched.status, 200, fetched.text);
    assert.deepEqual((fetched.body as { keys: typeof keys }).keys, keys);
    const tables = await pg.sql<{ n: string }>(
      "SELECT count(*) AS n FROM information_schema.tables WHERE table_name = 'leases'",
      'qks_kme_a',
    );
    assert.equal(Number(tables[0]!.n), 1, 'the replicas migrated their database');
    await Promise.all([master.close(), slave.close()]);
  });
});
