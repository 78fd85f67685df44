import assert from 'node:assert/strict';
import { randomBytes, randomUUID } from 'node:crypto';
import { after, afterEach, before, describe, it } from 'node:test';
import { IpsecAgent } from '../../../src/integrations/ipsec/ipsec-agent.js';
import type { IpsecConnection } from '../../../src/integrations/ipsec/gateway.js';
import { StrongSwanGateway } from '../../../src/integrations/ipsec/strongswan.js';
import { ViciClient } from '../../../src/integrations/ipsec/vici/client.js';
import { KeyRing } from '../../../src/sae/key-ring.js';
import { IpsecLab, type Gateway } from '../../helpers/ipsec-lab.js';
import { readFileSync } from 'node:fs';

/** The agents with their rings fed by hand, so that one side can be given a different key. */
describe('strongSwan gateways refuse what is not the agreed PPK', () => {
  const lab = new IpsecLab('strongswan');
  const agents: IpsecAgent[] = [];
  const connection = (gw: Gateway, ppkRequired = true): IpsecConnection => {
    const peer = lab.peer(gw);
    return {
      name: 'qkd',
      localAddr: gw.outer,
      remoteAddr: peer.outer,
      localId: gw.id,
      remoteId: peer.id,
      ikeSecret: readFileSync(lab.ikeSecretFile, 'utf8').trim(),
      localTs: `${gw.inner}/32`,
      remoteTs: `${peer.inner}/32`,
      ppkRequired,
    };
  };
  const pair = async (responderRequiresPpk = true) => {
    const rings = { a: new KeyRing(), b: new KeyRing() };
    const a = new IpsecAgent({
      role: 'initiator',
      gateway: new StrongSwanGateway({ vici: lab.vici(lab.a), connection: connection(lab.a) }),
      keys: rings.a,
      peerInstallWaitMs: 1000,
      retryMs: 60_000,
    });
    const b = new IpsecAgent({
      role: 'responder',
      gateway: new StrongSwanGateway({ vici: lab.vici(lab.b), connection: connection(lab.b, responderRequiresPpk) }),
      keys: rings.b,
    });
    agents.push(a, b);
    await b.start();
    await a.start();
    return { a, b, rings };
  };
  const key = () => ({ keyId: randomUUID(), key: randomBytes(32) });
  const vici = async (gw: Gateway) => ViciClient.connect(lab.vici(gw));
  /** A connection `plain` at gateway A with no PPK at all: it does not send USE_PPK. */
  const loadPlainConnection = async (c: ViciClient) => {
    const a = connection(lab.a);
    await c.call('load-conn', {
      plain: {
        version: 2,
        local_addrs: [a.localAddr],
        remote_addrs: [a.remoteAddr],
        proposals: ['aes256-sha256-x25519'],
        local: { auth: 'psk', id: a.localId },
        remote: { auth: 'psk', id: a.remoteId },
        children: { net: { local_ts: [a.localTs], remote_ts: [a.remoteTs] } },
      },
    });
  };

  before(async () => {
    await lab.start();
  });
  // A test that fails before it stops its agents must not leave them running into the next one.
  afterEach(async () => {
    for (const a of agents.splice(0)) await a.stop().catch(() => undefined);
  });
  after(async () => {
    for (const a of agents) await a.stop().catch(() => undefined);
    await lab.stop();
  });

  it('reports AUTH_FAILED when the peer holds another PPK under the same ID, and the old SA stays up', async () => {
    const { a, rings } = await pair();
    const failures: Array<{ code: string; keyId?: string }> = [];
    a.on('failure', (f) => failures.push(f));
    const first = key();
    rings.b.add({ keyId: first.keyId, key: Buffer.from(first.key) });
    await agents[1]!.settled();
    rings.a.add({ keyId: first.keyId, key: Buffer.from(first.key) });
    await a.settled();
    assert.equal(a.current?.keyId, first.keyId);
    const oldSa = a.current!.ikeId;

    const second = key();
    const wrong = Buffer.from(second.key);
    wrong[0]! ^= 1; // one bit: the responder's daemon holds a different PPK for the same PPK_ID
    rings.b.add({ keyId: second.keyId, key: wrong });
    await agents[1]!.settled();
    rings.a.add({ keyId: second.keyId, key: Buffer.from(second.key) });
    await a.settled();
    assert.deepEqual(
      failures.map((f) => [f.code, f.keyId]),
      [['auth_failed', second.keyId]],
      'one AUTH_FAILED for the mismatched key',
    );
    assert.equal(a.current?.ikeId, oldSa, 'the old SA is still the one in use');
    const ping = await lab.pingResult(lab.a, { count: 3, intervalS: 0.1 });
    assert.deepEqual([ping.sent, ping.received], [3, 3], 'and still carries traffic');
    for (const ag of agents.splice(0)) await ag.stop();
  });

  it('refuses a peer that offers no PPK when the PPK is required (no downgrade)', async () => {
    await pair();
    const c = await vici(lab.a);
    try {
      await loadPlainConnection(c);
      await assert.rejects(c.call('initiate', { ike: 'plain', child: 'net', timeout: 5000 }), /failed/);
      await c.call('unload-conn', { name: 'plain' });
    } finally {
      c.close();
    }
    assert.match(lab.log(lab.b), /PPK required but peer does not support PPK/, 'the responder says why');
    for (const ag of agents.splice(0)) await ag.stop();
  });

  it('with the PPK optional (an explicit choice) the same peer gets an SA without PPK: the downgrade', async () => {
    const { rings } = await pair(false);
    const k = key();
    rings.b.add(k);
    await agents[1]!.settled();
    const c = await vici(lab.a);
    try {
      await loadPlainConnection(c);
      await c.call('initiate', { ike: 'plain', child: 'net', timeout: 5000 });
      const sas = (await c.stream('list-sas', 'list-sa', { ike: 'plain' })).flatMap((m) => Object.values(m));
      assert.equal((sas[0] as Record<string, unknown>)['ppk'], undefined, 'no PPK in this SA');
      await c.call('terminate', { ike: 'plain', timeout: 5000 });
      await c.call('unload-conn', { name: 'plain' });
    } finally {
      c.close();
    }
    for (const ag of agents.splice(0)) await ag.stop();
  });
});
