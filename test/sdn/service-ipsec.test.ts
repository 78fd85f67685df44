import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createInterface } from 'node:readline';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { request } from 'undici';
import { freePorts } from '../../src/cli/ports.js';
import { builtInTopology } from '../../src/domain/topology.js';
import type { Service } from '../../src/sdn/controller/services.js';
import { agentConfig } from '../helpers/ipsec-agents.js';
import { IpsecLab } from '../helpers/ipsec-lab.js';
import { startControlledNetwork, type ControlledNetwork } from '../helpers/controlled-network.js';
import { eventually } from '../helpers/two-kmes.js';

const BIN = join(process.cwd(), 'bin', 'qks.js');

/**
 * A layer-3 service on line:3: two real strongSwan gateways in network namespaces, their agents
 * run by `qks service run` for sae-a1 (at kme-a) and sae-c1 (at kme-c, no link with kme-a); each
 * PPK is a key relayed through kme-b, refreshed by time under a continuous ping.
 */
describe('a layer-3 service: IPsec PPKs relayed through a trusted node', () => {
  const lab = new IpsecLab('strongswan');
  let net: ControlledNetwork;
  before(async () => {
    await lab.start();
    net = await startControlledNetwork(builtInTopology('line:3'));
  });
  after(async () => {
    await net?.stop();
    await lab.stop();
  });

  it('both gateways bring the tunnel up on the service’s keys and refresh them while traffic flows', async () => {
    const res = await request(`${net.controller.url}/api/v1/services`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({
        source: 'sae-a1',
        destination: 'sae-c1',
        key_length: 32,
        encryption_layer: 3,
        refresh: { type: 'time', value: 3 },
        algorithm: 10,
      }),
    });
    assert.equal(res.statusCode, 201);
    const service = (await res.body.json()) as Service;
    assert.deepEqual(service.path, ['kme-a', 'kme-b', 'kme-c']);

    const [port] = await freePorts(1);
    const events: Record<string, Array<Record<string, unknown>>> = { a: [], b: [] };
    const run = (gw: 'a' | 'b', sae: string) => {
      const config = agentConfig({ lab, gw: lab[gw], manifest: net.manifest, agreePort: port! });
      const child = spawn(
        process.execPath,
        [BIN, 'service', 'run', '--manifest', net.manifest, '--id', service.id, '--sae', sae, '--ipsec-config', config],
        {
          stdio: ['ignore', 'pipe', 'inherit'],
        },
      );
      createInterface({ input: child.stdout! }).on('line', (l) =>
        events[gw]!.push(JSON.parse(l) as Record<string, unknown>),
      );
      return { child, exited: new Promise<number | null>((resolve) => child.on('exit', resolve)) };
    };
    const destination = run('b', 'sae-c1');
    const source = run('a', 'sae-a1');
    const ups = () => events.a!.filter((e) => e['event'] === 'ike-sa-up').map((e) => String(e['key_ID']));
    try {
      await eventually(() => ups().length >= 1, 30_000, 'the first IKE SA');
      const ping = lab.pingResult(lab.a, { count: 60, intervalS: 0.1 });
      await eventually(() => new Set(ups()).size >= 3, 60_000, 'two refreshes');
      const result = await ping;
      assert.ok(
        result.received > result.sent / 2,
        `traffic crossed the tunnel: ${result.received} of ${result.sent} replies`,
      );
      for (const key of ups()) assert.match(lab.log(lab.b), new RegExp(`using PPK for PPK_ID '${key}'`));
      await eventually(
        async () => {
          const s = (await (
            await request(`${net.controller.url}/api/v1/services/${service.id}`)
          ).body.json()) as Service;
          return s.handle === events.a!.find((e) => e['event'] === 'ppk-installed')?.['key_ID'];
        },
        10_000,
        'the handle: the first PPK',
      );
    } finally {
      source.child.kill('SIGTERM');
      destination.child.kill('SIGTERM');
      assert.equal(await source.exited, 0);
      assert.equal(await destination.exited, 0);
    }
  });
});
