import assert from 'node:assert/strict';
import { after, afterEach, before, describe, it } from 'node:test';
import { freePorts } from '../../../src/cli/ports.js';
import { AgentProcess, agentConfig, startDemo } from '../../helpers/ipsec-agents.js';
import { IKE_SA_INIT, ppkIdsSeen, USE_PPK } from '../../helpers/ipsec-evidence.js';
import { IpsecLab, type Gateway } from '../../helpers/ipsec-lab.js';
import { IpsecAgent } from '../../../src/integrations/ipsec/ipsec-agent.js';
import { LibreswanGateway } from '../../../src/integrations/ipsec/libreswan.js';
import { KeyRing } from '../../../src/sae/key-ring.js';
import { randomBytes, randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';

describe('IPsec with QKD PPKs: two Libreswan gateways in network namespaces (IKE only: no kernel ESP here)', () => {
  const lab = new IpsecLab('libreswan');
  let demo: Awaited<ReturnType<typeof startDemo>>;
  const agents: AgentProcess[] = [];

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

  it('establishes the IKE SA with the QKD key as PPK, and a rotation brings up a new IKE SA with the next', async (t) => {
    const [port] = await freePorts(1);
    const capture = await lab.capture(lab.a);
    const responder = new AgentProcess(agentConfig({ lab, gw: lab.b, manifest: demo.manifest, agreePort: port! }));
    agents.push(responder);
    await responder.waitFor('running');
    const initiator = new AgentProcess(agentConfig({ lab, gw: lab.a, manifest: demo.manifest, agreePort: port! }));
    agents.push(initiator);
    const [first] = await initiator.waitFor('ike-sa-up');
    const firstKey = String(first!['key_ID']);

    const ike = await capture.stop();
    const init = ike.filter((m) => m.exchange === IKE_SA_INIT);
    assert.ok(init.find((m) => !m.response)?.notifies.includes(USE_PPK), 'USE_PPK in the IKE_SA_INIT request');
    assert.ok(init.find((m) => m.response)?.notifies.includes(USE_PPK), 'USE_PPK in the IKE_SA_INIT response');
    assert.match(lab.log(lab.a), /PPK AUTH calculated as initiator/);
    assert.match(lab.log(lab.b), /PPK AUTH calculated as responder/);
    assert.deepEqual(ppkIdsSeen(lab.log(lab.b)), [firstKey], 'the responder received the QKD key ID as PPK_ID');

    initiator.child.kill('SIGHUP');
    const ups = await initiator.waitFor('ike-sa-up', 2);
    const secondKey = String(ups[1]!['key_ID']);
    assert.notEqual(secondKey, firstKey);
    assert.notEqual(ups[1]!['ike_SA'], first!['ike_SA'], 'a new IKE SA');
    assert.deepEqual(ppkIdsSeen(lab.log(lab.b)), [firstKey, secondKey], 'with the next PPK');
    // Break-before-make: the initiator's pluto deleted the old IKE SA (with its Child SAs, where
    // there are any) before it began the new one, so for a moment the connection had no SA.
    const lines = lab.log(lab.a).split('\n');
    const at = (what: string) => lines.findIndex((l) => l.includes(what));
    const deleted = at(`#${String(first!['ike_SA'])}: deleting state`);
    const initiating = at(`#${String(ups[1]!['ike_SA'])}: initiating IKEv2`);
    const established = at(`#${String(ups[1]!['ike_SA'])}: initiator established IKE SA`);
    assert.ok(deleted >= 0 && deleted < initiating && initiating < established, 'the old IKE SA went first');
    assert.match(lines[deleted]!, /and sending notification/, 'the peer was told');
    const ms = (i: number) => {
      const [, h, m, s] = /(\d\d):(\d\d):(\d\d\.\d+):/.exec(lines[i]!)!;
      return ((Number(h) * 60 + Number(m)) * 60 + Number(s)) * 1000;
    };
    t.diagnostic(`no IKE SA for ${(ms(established) - ms(deleted)).toFixed(1)} ms during the rotation`);
    assert.equal(initiator.of('failure').length, 0, JSON.stringify(initiator.of('failure')));
    for (const a of agents.splice(0)) assert.equal(await a.stop(), 0);
  });

  it('reports AUTH_FAILED when the peer holds another PPK, and brings the old IKE SA back', async () => {
    const gateway = (gw: Gateway) =>
      new LibreswanGateway({
        ctlSocket: lab.ctlSocket(gw),
        secretsFile: lab.agentSecrets(gw),
        dir: join(gw.dir, 'agent-in-process'),
        libexec: lab.libexec,
        connection: {
          name: 'qkd',
          localAddr: gw.outer,
          remoteAddr: lab.peer(gw).outer,
          localId: gw.id,
          remoteId: lab.peer(gw).id,
          ikeSecret: readFileSync(lab.ikeSecretFile, 'utf8').trim(),
          localTs: `${gw.inner}/32`,
          remoteTs: `${lab.peer(gw).inner}/32`,
          ppkRequired: true,
        },
      });
    const rings = { a: new KeyRing(), b: new KeyRing() };
    const a = new IpsecAgent({ role: 'initiator', gateway: gateway(lab.a), keys: rings.a, peerInstallWaitMs: 500 });
    const b = new IpsecAgent({ role: 'responder', gateway: gateway(lab.b), keys: rings.b });
    const failures: Array<{ code: string; message: string }> = [];
    a.on('failure', (f) => failures.push(f));
    try {
      await b.start();
      await a.start();
      const first = { keyId: randomUUID(), key: randomBytes(32) };
      rings.b.add({ ...first, key: Buffer.from(first.key) });
      await b.settled();
      rings.a.add({ ...first, key: Buffer.from(first.key) });
      await a.settled();
      assert.equal(a.current?.keyId, first.keyId);

      const second = { keyId: randomUUID(), key: randomBytes(32) };
      const wrong = Buffer.from(second.key);
      wrong[31]! ^= 0x80;
      rings.b.add({ keyId: second.keyId, key: wrong });
      await b.settled();
      rings.a.add(second);
      await a.settled();
      assert.equal(failures.length, 1, JSON.stringify(failures));
      assert.equal(failures[0]!.code, 'auth_failed');
      assert.match(failures[0]!.message, new RegExp(`back with PPK ${first.keyId}`));
      const sas = await gateway(lab.a).sas();
      assert.ok(
        sas.some((s) => s.ikeId === a.current!.ikeId && s.state === 'ESTABLISHED'),
        'the old PPK is in use again',
      );
      assert.equal(a.current!.keyId, first.keyId);
    } finally {
      await a.stop();
      await b.stop();
    }
  });
});
