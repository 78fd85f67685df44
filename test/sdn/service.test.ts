import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import type { AddressInfo, Server } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { request } from 'undici';
import { freePorts } from '../../src/cli/ports.js';
import { builtInTopology } from '../../src/domain/topology.js';
import type { Service } from '../../src/sdn/controller/services.js';
import { roundTrip, startEcho } from '../helpers/echo-server.js';
import { startControlledNetwork, type ControlledNetwork } from '../helpers/controlled-network.js';
import { eventually } from '../helpers/two-kmes.js';

const BIN = join(process.cwd(), 'bin', 'qks.js');

/** `qks ...` in the background, its JSON lines collected. */
function qks(...args: string[]): {
  child: ChildProcess;
  lines: () => Array<Record<string, unknown>>;
  exited: Promise<number | null>;
  stderr: () => string;
} {
  const child = spawn(process.execPath, [BIN, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (err += d.toString()));
  const exited = new Promise<number | null>((resolve) => child.on('exit', resolve));
  const lines = () =>
    out
      .split('\n')
      .filter((l) => l.startsWith('{'))
      .map((l) => JSON.parse(l) as Record<string, unknown>);
  return { child, lines, exited, stderr: () => err };
}

/**
 * The slides' workflow on line:4: an operator asks the controller for a layer-4 service between
 * sae-a1 and sae-d1 (three links apart); both ends run it with `qks service run`; traffic crosses
 * the TLS tunnel while its keys, relayed through kme-b and kme-c on the installed path, are
 * refreshed by time.
 */
describe('an end-to-end service through the SDN controller', () => {
  let net: ControlledNetwork;
  let echo: Server;
  before(async () => {
    net = await startControlledNetwork(builtInTopology('line:4'));
    echo = await startEcho();
  });
  after(async () => {
    echo?.close();
    await net?.stop();
  });
  const manifest = () => net.manifest;
  /** `qks service create` from sae-a1, refreshed by time. */
  const create = (destination: string, layer: string, ...more: string[]) =>
    qks(
      'service',
      'create',
      '--manifest',
      manifest(),
      '--source',
      'sae-a1',
      '--destination',
      destination,
      '--layer',
      layer,
      '--refresh-type',
      'time',
      ...more,
    );

  it('create installs the path; the ends run the TLS tunnel; the handle is the first key; keys refresh under traffic', async () => {
    const created = create('sae-d1', '4', '--refresh-value', '2');
    assert.equal(await created.exited, 0);
    const service = created.lines()[0] as unknown as Service;
    assert.deepEqual(service.path, ['kme-a', 'kme-b', 'kme-c', 'kme-d']);
    assert.ok(service.virtual_link, 'a relayed path is installed in kme-a');
    const status = await net.sites.sae('sae-a1').get('/api/v1/keys/sae-d1/status');
    assert.deepEqual(
      (status.body as { status_extension: Record<string, unknown> }).status_extension['qks_relay_path'],
      service.path,
    );

    const [agree, tls, plain] = await freePorts(3);
    const echoPort = (echo.address() as AddressInfo).port;
    const end = (sae: string, ...where: string[]) =>
      qks(
        'service',
        'run',
        '--manifest',
        manifest(),
        '--id',
        service.id,
        '--sae',
        sae,
        '--agree',
        `127.0.0.1:${agree}`,
        ...where,
      );
    const destination = end('sae-d1', '--listen', `127.0.0.1:${tls}`, '--target', `127.0.0.1:${echoPort}`);
    const source = end('sae-a1', '--listen', `127.0.0.1:${plain}`, '--server', `127.0.0.1:${tls}`);
    try {
      await eventually(() => source.lines().some((l) => l['event'] === 'listening'), 30_000, 'the source listening');
      const keysSeen = () => [
        ...new Set(
          source
            .lines()
            .filter((l) => l['event'] === 'key')
            .map((l) => l['key_ID']),
        ),
      ];
      const deadline = Date.now() + 30_000;
      let rounds = 0;
      // Traffic across at least two refreshes: a round trip on each key.
      while (keysSeen().length < 3 && Date.now() < deadline) {
        const data = randomBytes(4096);
        assert.deepEqual(await roundTrip(plain!, data), data, 'the bytes come back through the tunnel');
        rounds++;
        await new Promise((r) => setTimeout(r, 250));
      }
      assert.ok(keysSeen().length >= 3, `three keys, two refreshes (saw ${keysSeen().length} in ${rounds} rounds)`);
      const served = destination
        .lines()
        .filter((l) => l['event'] === 'connection')
        .map((l) => l['key_ID']);
      assert.ok(new Set(served).size >= 2, 'the destination served connections on more than one key');
      await eventually(
        async () => {
          const s = (await (
            await request(`${net.controller.url}/api/v1/services/${service.id}`)
          ).body.json()) as Service;
          return s.handle === keysSeen()[0];
        },
        10_000,
        'the handle: the first key ID',
      );
    } finally {
      source.child.kill('SIGTERM');
      destination.child.kill('SIGTERM');
      assert.equal(await source.exited, 0);
      assert.equal(await destination.exited, 0);
    }
    const removed = qks('service', 'delete', '--manifest', manifest(), '--id', service.id);
    assert.equal(await removed.exited, 0);
    assert.deepEqual(net.controller.controller.installedPaths(), [], 'its path goes with it');
    const listed = qks('service', 'list', '--manifest', manifest());
    assert.equal(await listed.exited, 0);
    assert.deepEqual(listed.lines(), []);
  });

  it('refuses what it cannot serve, with the reason', async () => {
    const bad = create('sae-zz', '4', '--refresh-value', '2');
    assert.equal(await bad.exited, 2);
    assert.match(bad.stderr(), /the controller refused: unknown SAE: sae-zz/);
    const layer = create('sae-b1', '2');
    assert.equal(await layer.exited, 2);
    assert.match(layer.stderr(), /--layer must be 3 \(IPsec\) or 4 \(TLS\)/);
    const missing = qks('service', 'list', '--controller', 'http://127.0.0.1:9');
    assert.equal(await missing.exited, 2);
    assert.match(missing.stderr(), /does not answer/);
  });
});
