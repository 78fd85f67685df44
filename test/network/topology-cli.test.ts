import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import type { Manifest } from '../../src/cli/manifest.js';
import { loadConfig } from '../../src/kme/config.js';
import { loadControllerConfig } from '../../src/sdn/controller/config.js';
import { archiveAndCheckLogs } from '../helpers/log-leaks.js';
import { assertSameKeys } from '../helpers/redact.js';
import { TestClient } from '../helpers/sae-client.js';
import { eventually } from '../helpers/two-kmes.js';

const BIN = join(process.cwd(), 'bin', 'qks.js');
const qks = (...args: string[]) => spawnSync(process.execPath, [BIN, ...args], { encoding: 'utf8', timeout: 60_000 });
const readJson = <T>(file: string) => JSON.parse(readFileSync(file, 'utf8')) as T;

describe('qks init and qks demo with a topology', () => {
  const dir = mkdtempSync(join(tmpdir(), 'qks-topology-cli-'));
  after(() => {
    archiveAndCheckLogs(dir);
    rmSync(dir, { recursive: true, force: true });
  });

  it('init --topology ring:4 gives each KME its two links and peers, node addresses, and a manifest of the links', () => {
    const site = join(dir, 'ring');
    const run = qks('init', '--dir', site, '--topology', 'ring:4', '--ports', 'auto', '--rate', '100000');
    assert.equal(run.status, 0, run.stderr);
    const manifest = readJson<Manifest>(join(site, 'manifest.json'));
    // The SDN controller's configuration beside it: every KME's node interface and node address.
    const controller = loadControllerConfig(join(site, 'controller.json'));
    assert.deepEqual(
      controller.kmes.map((k) => [k.id, k.node_address, k.url]),
      manifest.kmes.map((k) => [k.id, k.node_address, k.url]),
    );
    assert.match(run.stdout, /qks controller --config \S+controller\.json/);
    assert.deepEqual(manifest.links, [
      { id: 'link-a-b', a: 'kme-a', b: 'kme-b' },
      { id: 'link-b-c', a: 'kme-b', b: 'kme-c' },
      { id: 'link-c-d', a: 'kme-c', b: 'kme-d' },
      { id: 'link-a-d', a: 'kme-a', b: 'kme-d' },
    ]);
    assert.deepEqual(
      manifest.kmes.map((k) => [k.id, k.node_address]),
      [
        ['kme-a', '127.0.1.1'],
        ['kme-b', '127.0.1.2'],
        ['kme-c', '127.0.1.3'],
        ['kme-d', '127.0.1.4'],
      ],
    );
    assert.equal(manifest.saes.length, 8);
    const configs = manifest.kmes.map((k) => loadConfig(k.config));
    const channel = new Map(configs.map((c) => [c.kme_id, `https://127.0.0.1:${c.kme_api.port}`]));
    for (const c of configs) {
      const mine: NonNullable<Manifest['links']> = manifest.links!.filter((l) => l.a === c.kme_id || l.b === c.kme_id);
      assert.deepEqual(
        c.links.map((l) => l.id),
        mine.map((l) => l.id),
        `${c.kme_id}'s links`,
      );
      assert.deepEqual(
        c.peers,
        mine.map((l) => {
          const peer = l.a === c.kme_id ? l.b : l.a;
          return { kme_id: peer, url: channel.get(peer) };
        }),
        `${c.kme_id}'s peers`,
      );
      assert.ok(c.links.every((l) => l.source.type === 'simulated' && l.source.rate_bps === 100000));
      assert.equal(c.saes.length, 8, 'every KME knows every SAE of the network');
    }
    // The topology as made, in the --topology file format.
    const again = qks('init', '--dir', join(dir, 'copy'), '--topology', join(site, 'topology.json'), '--ports', 'auto');
    assert.equal(again.status, 0, again.stderr);
    assert.deepEqual(readJson<Manifest>(join(dir, 'copy', 'manifest.json')).links, manifest.links);
  });

  it('a topology file sets each link its own source; mistakes are named before anything is written', () => {
    const file = join(dir, 'net.yaml');
    writeFileSync(
      file,
      [
        'sites: [{ kme: north }, { kme: hub }, { kme: south, node_address: 10.9.0.3 }]',
        'links:',
        '  - { a: north, b: hub, source: { type: qkd, distance_km: 40 } }',
        '  - { a: hub, b: south, source: { type: simulated, rate_bps: 5000 } }',
      ].join('\n'),
    );
    const site = join(dir, 'file');
    const run = qks('init', '--dir', site, '--topology', file, '--ports', 'auto');
    assert.equal(run.status, 0, run.stderr);
    const hub = loadConfig(join(site, 'hub.json'));
    assert.deepEqual(
      hub.links.map((l) => [l.id, l.source.type, 'distance_km' in l.source ? l.source.distance_km : undefined]),
      [
        ['link-north-hub', 'qkd', 40],
        ['link-hub-south', 'simulated', undefined],
      ],
    );
    assert.equal(loadConfig(join(site, 'south.json')).node_address, '10.9.0.3');

    writeFileSync(file, 'sites: [{ kme: a }, { kme: b }]\nlinks: [{ a: a, b: c }]\n');
    const bad = qks('init', '--dir', join(dir, 'bad'), '--topology', file, '--ports', 'auto');
    assert.equal(bad.status, 2);
    assert.equal(bad.stderr.trim(), `qks init: invalid topology ${file}: link link-a-c: no site c`);
    assert.ok(!existsSync(join(dir, 'bad')), 'nothing written');
    const shape = qks('init', '--dir', join(dir, 'bad'), '--topology', 'tree:3');
    assert.match(shape.stderr, /^qks init: "tree:3" is not a shape: line:N, ring:N, star:N, mesh:N, or a file$/m);
    const both = qks('init', '--dir', join(dir, 'bad'), '--topology', 'line:3', '--kmes', 'x,y');
    assert.match(both.stderr, /give --kmes or --topology, not both/);
  });

  it('demo --topology star:4 runs four KMEs; keys flow on every link, the same at both ends; a kept --dir runs it again', async () => {
    const site = join(dir, 'star');
    const manifestFile = join(dir, 'star.json');
    const run = async (...extra: string[]) => {
      rmSync(manifestFile, { force: true });
      const demo = spawn(process.execPath, [BIN, 'demo', '--dir', site, '--manifest', manifestFile, ...extra], {
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      let stdout = '';
      demo.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
      const exited = new Promise<number | null>((resolve) => demo.on('exit', resolve));
      await eventually(() => existsSync(manifestFile) || demo.exitCode !== null, 60_000, 'the demo manifest');
      return { demo, exited, stdout: () => stdout };
    };
    const first = await run('--topology', 'star:4', '--source', 'simulated', '--rate', '200000');
    try {
      const manifest = readJson<Manifest>(manifestFile);
      assert.deepEqual(
        manifest.links!.map((l) => l.id),
        ['link-a-b', 'link-a-c', 'link-a-d'],
      );
      await eventually(() => /links: link-a-b, link-a-c, link-a-d/.test(first.stdout()), 5000, 'the printed links');
      // The SDN controller runs beside: it reads the four KMEs over ETSI 015.
      assert.match(manifest.controller!.pcep, /^127\.0\.0\.1:\d+$/);
      assert.match(first.stdout(), /SDN controller: http:\/\/127\.0\.0\.1:\d+\/api\/v1\/network, PCEP on /);
      await eventually(
        async () => {
          const view = (await (await fetch(`${manifest.controller!.url}/api/v1/network`)).json()) as {
            nodes: Array<{ reachable: boolean }>;
            links: Array<{ up: boolean }>;
          };
          return view.nodes.filter((n) => n.reachable).length === 4 && view.links.filter((l) => l.up).length === 3;
        },
        20_000,
        'the controller seeing four KMEs and three links',
      );
      assert.match(first.stdout(), /QKS demo running: 4 KMEs joined by 3 simulated QKD links/);
      // The demo names a pair without a common link (two leaves of the star): relayed through the hub.
      assert.match(
        first.stdout(),
        /Keys for sae-c1 \(at kme-c, no link with kme-b\) are relayed through trusted nodes:/,
      );
      for (const link of manifest.links!) {
        for (const [from, to] of [
          [link.a, link.b],
          [link.b, link.a],
        ] as const) {
          const client = (kme: string) => {
            const sae = manifest.saes.find((s) => s.kme === kme)!;
            const url = manifest.kmes.find((k) => k.id === kme)!.url;
            return { id: sae.id, http: new TestClient(url, { ca: manifest.ca, cert: sae.cert, key: sae.key }) };
          };
          const [master, slave] = [client(from), client(to)];
          try {
            let got: { status: number; body: unknown } = { status: 0, body: null };
            await eventually(
              async () => (got = await master.http.get(`/api/v1/keys/${slave.id}/enc_keys?number=2`)).status === 200,
              20_000,
              `keys from ${from} for ${to}`,
            );
            const keys = (got.body as { keys: Array<{ key_ID: string; key: string }> }).keys;
            const fetched = await slave.http.post(`/api/v1/keys/${master.id}/dec_keys`, {
              key_IDs: keys.map((k) => ({ key_ID: k.key_ID })),
            });
            assert.equal(fetched.status, 200, JSON.stringify(fetched.body));
            assertSameKeys((fetched.body as { keys: typeof keys }).keys, keys, `${from} → ${to}`);
          } finally {
            await master.http.close();
            await slave.http.close();
          }
        }
      }
    } finally {
      first.demo.kill('SIGTERM');
      assert.equal(await first.exited, 0);
    }
    const other = await run('--topology', 'ring:4');
    assert.notEqual(await other.exited, 0);
    const again = await run();
    try {
      assert.equal(readJson<Manifest>(manifestFile).kmes.length, 4, 'the kept star, on new ports');
      assert.ok(readJson<Manifest>(manifestFile).controller, 'with its controller');
    } finally {
      again.demo.kill('SIGTERM');
      assert.equal(await again.exited, 0);
    }
  });
});
