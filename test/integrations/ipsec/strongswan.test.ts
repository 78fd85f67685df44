import assert from 'node:assert/strict';
import { after, afterEach, before, describe, it, type TestContext } from 'node:test';
import { spawnSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { DemoManifest } from '../../../src/cli/demo.js';
import { freePorts } from '../../../src/cli/ports.js';
import { KmeClient } from '../../../src/sae/kme-client.js';
import { ViciClient } from '../../../src/integrations/ipsec/vici/client.js';
import { AgentProcess, agentConfig, startDemo } from '../../helpers/ipsec-agents.js';
import { IpsecLab } from '../../helpers/ipsec-lab.js';
import { eventually } from '../../helpers/two-kmes.js';

const USE_PPK = 16435;
const IKE_SA_INIT = 34;

describe('IPsec with QKD PPKs: two strongSwan gateways in network namespaces', () => {
  const lab = new IpsecLab('strongswan');
  let demo: Awaited<ReturnType<typeof startDemo>>;
  const agents: AgentProcess[] = [];
  const agent = async (gw: 'a' | 'b', agreePort: number, rotation: { everySeconds?: number; bytes?: number } = {}) => {
    const config = agentConfig({ lab, gw: lab[gw], manifest: demo.manifest, agreePort, ...rotation });
    const a = new AgentProcess(config);
    agents.push(a);
    await a.waitFor('running');
    return a;
  };
  const ikeSas = async (gw: 'a' | 'b') => {
    const vici = await ViciClient.connect(lab.vici(lab[gw]));
    try {
      return await vici.stream('list-sas', 'list-sa', { ike: 'qkd' });
    } finally {
      vici.close();
    }
  };

  before(async () => {
    await lab.start();
    demo = await startDemo();
  });
  // A test that fails before it stops its agents must not leave them running into the next one.
  afterEach(async () => {
    for (const a of agents.splice(0)) await a.stop('SIGKILL');
  });
  after(async () => {
    for (const a of agents) await a.stop('SIGKILL');
    await demo?.stop();
    await lab.stop();
  });

  let firstKey = '';
  it('brings the tunnel up with a QKD key as PPK: ping passes, USE_PPK in both IKE_SA_INIT, PPK_ID = key ID', async () => {
    const capture = await lab.capture(lab.a);
    const [port] = await freePorts(1);
    const responder = await agent('b', port!);
    const initiator = await agent('a', port!);
    const [up] = await initiator.waitFor('ike-sa-up');
    firstKey = String(up!['key_ID']);
    assert.match(firstKey, /^[0-9a-f-]{36}$/, 'the PPK_ID is the QKD key ID');
    assert.ok(
      responder.of('ppk-installed').some((e) => e['key_ID'] === firstKey),
      'the responder installed it',
    );

    const ike = await capture.stop();
    const init = ike.filter((m) => m.exchange === IKE_SA_INIT);
    const request = init.find((m) => !m.response);
    const response = init.find((m) => m.response);
    assert.ok(request?.notifies.includes(USE_PPK), `USE_PPK in the IKE_SA_INIT request (${JSON.stringify(init)})`);
    assert.ok(response?.notifies.includes(USE_PPK), 'USE_PPK in the IKE_SA_INIT response');

    assert.match(lab.log(lab.a), new RegExp(`using PPK for PPK_ID '${firstKey}'`), 'initiator charon log');
    assert.match(lab.log(lab.b), new RegExp(`using PPK for PPK_ID '${firstKey}'`), 'responder charon log');
    for (const gw of ['a', 'b'] as const) {
      const sas = (await ikeSas(gw)).flatMap((m) => Object.values(m)) as Array<Record<string, unknown>>;
      assert.ok(
        sas.some((sa) => sa['state'] === 'ESTABLISHED' && sa['ppk'] === 'yes'),
        `${gw}: an SA with PPK`,
      );
    }
    const ping = await lab.pingResult(lab.a, { count: 5, intervalS: 0.1 });
    assert.equal(ping.received, ping.sent, 'ping through the tunnel');
    assert.equal(ping.sent, 5);

    // Both agents report in: the operator dashboard shows the connection and the PPK in use.
    const manifest = JSON.parse(readFileSync(demo.manifest, 'utf8')) as DemoManifest;
    for (const [kme, sae] of [
      [manifest.kmes[0]!, 'sae-a1'],
      [manifest.kmes[1]!, 'sae-b1'],
    ] as const) {
      const operator = new KmeClient({ url: kme.url, ca: manifest.ca, ...manifest.operator! });
      try {
        await eventually(
          async () =>
            (await operator.overview()).integrations.some(
              (i) => i.kind === 'ipsec' && i.sae === sae && i.state === 'up' && firstKey.startsWith(i.key_ID ?? '-'),
            ),
          10_000,
          `the IPsec report of ${sae}`,
        );
      } finally {
        await operator.close();
      }
    }
    for (const a of agents.splice(0)) assert.equal(await a.stop(), 0, 'agents stop cleanly');
  });

  // Make-before-break, as the design guarantees it: the initiator sends on the new SA only once
  // both ends have it, so every request reaches the peer. The responder answers on the new SA as
  // soon as it has installed it, while IKE_AUTH's response is still on its way: a reply in that
  // moment can be lost, at most one per rotation at these rates, more often the busier the machine.
  const assertMakeBeforeBreak = (
    t: TestContext,
    ping: { sent: number; arrived: number; received: number },
    rotations: number,
  ) => {
    t.diagnostic(`${ping.sent} requests, ${ping.arrived} arrived, ${ping.received} replies; ${rotations} rotations`);
    assert.equal(ping.arrived, ping.sent, `every request reached the peer across ${rotations} rotations`);
    assert.ok(
      ping.received >= ping.sent - rotations,
      `at most one reply lost per rotation: ${ping.received} of ${ping.sent} replies, ${rotations} rotations`,
    );
  };

  it('rotates the PPK at least three times under a continuous ping, losing no request', async (t) => {
    const [port] = await freePorts(1);
    await agent('b', port!);
    const initiator = await agent('a', port!, { everySeconds: 2 });
    await initiator.waitFor('ike-sa-up');
    const ping = lab.pingResult(lab.a, { count: 90, intervalS: 0.1 });
    const ups = await initiator.waitFor('ike-sa-up', 4, 60_000);
    const result = await ping;
    const keys = new Set(ups.map((u) => String(u['key_ID'])));
    assert.ok(keys.size >= 4, `a new key ID per rotation (${keys.size})`);
    assert.ok(!keys.has(firstKey), 'never the key of an earlier run');
    for (const u of ups.slice(1)) {
      assert.ok((u['replaced'] as string[]).length >= 1, 'each new IKE SA replaced the one before (make-before-break)');
      assert.match(lab.log(lab.b), new RegExp(`using PPK for PPK_ID '${String(u['key_ID'])}'`));
    }
    assert.ok(result.sent >= 90, `${result.sent} requests`);
    assertMakeBeforeBreak(t, result, initiator.of('ike-sa-up').length - 1);
    await eventually(async () => (await ikeSas('a')).length === 1, 30_000, 'old IKE SAs closed');
    for (const a of agents.splice(0)) await a.stop();
  });

  it('rotates by traffic: a new PPK after the configured bytes have crossed the tunnel', async (t) => {
    const [port] = await freePorts(1);
    await agent('b', port!);
    // 200 kB: about 80 pings of 1,200 bytes, counted both ways (ESP overhead included).
    const initiator = await agent('a', port!, { bytes: 200_000 });
    const [first] = await initiator.waitFor('ike-sa-up');
    const quiet = await lab.pingResult(lab.a, { count: 5, intervalS: 0.1 });
    assert.deepEqual([quiet.sent, quiet.received], [5, 5]);
    await new Promise((r) => setTimeout(r, 1500));
    assert.equal(initiator.of('ike-sa-up').length, 1, 'little traffic: no rotation');
    const result = await lab.pingResult(lab.a, { count: 100, intervalS: 0.02, size: 1200 });
    // The traffic has crossed; the agent counts it at its next poll of the daemon and rotates.
    const ups = await initiator.waitFor('ike-sa-up', 2, 60_000);
    assert.notEqual(ups[1]!['key_ID'], first!['key_ID']);
    assertMakeBeforeBreak(t, result, initiator.of('ike-sa-up').length - 1);
    for (const a of agents.splice(0)) await a.stop();
  });

  it('reports the peer agent down and keeps the tunnel; a restarted daemon is reported, then restored and used again', async () => {
    const [port] = await freePorts(1);
    const responder = await agent('b', port!);
    const initiator = await agent('a', port!);
    await initiator.waitFor('ike-sa-up');

    await responder.stop();
    initiator.child.kill('SIGHUP');
    const [down] = await initiator.waitFor('failure', 1, 30_000);
    assert.equal(down!['code'], 'agreement');
    assert.match(String(down!['message']), /sae-b1/, 'names the peer');
    let ping = await lab.pingResult(lab.a, { count: 3, intervalS: 0.1 });
    assert.deepEqual([ping.sent, ping.received], [3, 3], 'the old SA still carries traffic');
    assert.equal(initiator.of('ike-sa-up').length, 1);

    const responder2 = await agent('b', port!);
    await lab.stopDaemon(lab.a);
    initiator.child.kill('SIGHUP');
    await eventually(
      () => initiator.of('failure').some((f) => f['code'] === 'daemon_unavailable'),
      20_000,
      'daemon failure report',
    );
    const failure = initiator.of('failure').find((f) => f['code'] === 'daemon_unavailable')!;
    assert.match(String(failure['message']), /charon\.vici/, 'names the socket');
    assert.equal(initiator.child.exitCode, null, 'the agent keeps running');

    // charon is back: the agent loads its connection and PPKs again by itself and brings the SA up
    // (with the PPK it has: a key is not spent on a restart); SIGHUP then rotates as ever.
    await lab.startDaemon(lab.a);
    await initiator.waitFor('restored', 1, 20_000);
    const again = await initiator.waitFor('ike-sa-up', 2, 20_000);
    ping = await lab.pingResult(lab.a, { count: 3, intervalS: 0.1 });
    assert.deepEqual([ping.sent, ping.received], [3, 3], 'tunnel back after the restart, unasked');
    initiator.child.kill('SIGHUP');
    const ups = await initiator.waitFor('ike-sa-up', 3, 20_000);
    assert.notEqual(ups[2]!['key_ID'], again[1]!['key_ID']);
    ping = await lab.pingResult(lab.a, { count: 3, intervalS: 0.1 });
    assert.deepEqual([ping.sent, ping.received], [3, 3], 'tunnel on a new PPK');
    void responder2;
    for (const a of agents.splice(0)) await a.stop();
  });

  it("survives an operator's swanctl --load-all: its connection and PPKs come back at once, beside the operator's", async () => {
    const [port] = await freePorts(1);
    const responder = await agent('b', port!);
    const initiator = await agent('a', port!);
    const [up] = await initiator.waitFor('ike-sa-up');
    // The operator's own swanctl.conf, which knows nothing of QKS: --load-all unloads what it does not name.
    for (const gw of ['a', 'b'] as const) {
      const conf = join(lab[gw].dir, 'swanctl.conf');
      writeFileSync(
        conf,
        'connections {\n  operator {\n    remote_addrs = 192.0.2.1\n    local {\n      auth = psk\n    }\n    remote {\n      auth = psk\n    }\n  }\n}\n',
      );
      const load = spawnSync('swanctl', ['--load-all', '--noprompt', '--uri', lab.vici(lab[gw]), '--file', conf], {
        encoding: 'utf8',
      });
      assert.equal(load.status, 0, load.stderr);
    }
    const restoredWithin = async (a: AgentProcess) => {
      const started = Date.now();
      await a.waitFor('restored', 1, 10_000);
      return Date.now() - started;
    };
    const [ms] = await Promise.all([restoredWithin(initiator), restoredWithin(responder)]);
    assert.ok(ms! < 3000, `restored after ${ms} ms`);
    // swanctl unloads in steps (secrets, then connections): a look between them restores early and
    // the next look, half a second later, restores again. Both connections are there within seconds.
    const names = async (gw: 'a' | 'b') => {
      const vici = await ViciClient.connect(lab.vici(lab[gw]));
      try {
        return (await vici.stream('list-conns', 'list-conn', {})).flatMap((c) => Object.keys(c)).sort();
      } finally {
        vici.close();
      }
    };
    for (const gw of ['a', 'b'] as const) {
      await eventually(
        async () => (await names(gw)).join() === 'operator,qkd',
        5000,
        `${gw}: the operator's connection and the agent's`,
      );
    }
    // The next rotation brings a new IKE SA up, as before the reload.
    initiator.child.kill('SIGHUP');
    const ups = await initiator.waitFor('ike-sa-up', 2, 30_000);
    assert.notEqual(ups[1]!['key_ID'], up!['key_ID']);
    const ping = await lab.pingResult(lab.a, { count: 3, intervalS: 0.1 });
    assert.deepEqual([ping.sent, ping.received], [3, 3], 'traffic through the new SA');
    for (const a of agents.splice(0)) await a.stop();
  });
});
