import assert from 'node:assert/strict';
import { randomBytes, randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, afterEach, before, beforeEach, describe, it } from 'node:test';
import { freePorts } from '../../../src/cli/ports.js';
import type { IpsecConnection, IpsecGateway } from '../../../src/integrations/ipsec/gateway.js';
import { IpsecAgent } from '../../../src/integrations/ipsec/ipsec-agent.js';
import { LibreswanGateway } from '../../../src/integrations/ipsec/libreswan.js';
import { StrongSwanGateway } from '../../../src/integrations/ipsec/strongswan.js';
import { ViciClient } from '../../../src/integrations/ipsec/vici/client.js';
import { KeyRing } from '../../../src/sae/key-ring.js';
import { AgentProcess, agentConfig, startDemo } from '../../helpers/ipsec-agents.js';
import { charonPpkIds, IKE_SA_INIT, logHoldsKey, ppkIdsSeen, USE_PPK } from '../../helpers/ipsec-evidence.js';
import { IpsecLab, type Daemon, type Gateway, type IkeEvidence } from '../../helpers/ipsec-lab.js';
import { eventually } from '../../helpers/two-kmes.js';

/**
 * One strongSwan gateway and one Libreswan gateway, each with its `qks ipsec` agent, the agents'
 * default proposals (strongSwan `aes256-sha256-x25519`, Libreswan `aes256-sha2_256;dh31`: the same
 * suite). IKE only: this kernel has no ESP and Libreswan no user-space ESP, so the Child SA cannot
 * be installed at the Libreswan end; the tests assert on the IKE SA, and on how each end handles
 * that Child SA failure.
 */
describe('strongSwan ↔ Libreswan: IKEv2 with the QKD key as PPK (IKE only: no ESP here)', () => {
  let demo: Awaited<ReturnType<typeof startDemo>>;
  before(async () => {
    demo = await startDemo();
  });
  after(async () => {
    await demo?.stop();
  });

  /** A fresh lab per test: SAs and pluto's revivals of one test do not reach the next. */
  const labOf = (daemons: { a: Daemon; b: Daemon }) => {
    const ctx = { lab: undefined as unknown as IpsecLab, agents: [] as AgentProcess[] };
    beforeEach(async () => {
      ctx.lab = new IpsecLab(daemons);
      await ctx.lab.start();
    });
    afterEach(async () => {
      for (const a of ctx.agents.splice(0)) await a.stop('SIGKILL');
      await ctx.lab.stop();
    });
    return ctx;
  };
  const agent = async (ctx: ReturnType<typeof labOf>, gw: Gateway, agreePort: number) => {
    const a = new AgentProcess(agentConfig({ lab: ctx.lab, gw, manifest: demo.manifest, agreePort }));
    ctx.agents.push(a);
    await a.waitFor('running');
    return a;
  };
  /** charon's IKE SAs of the connection, as VICI `list-sas` gives them. */
  const charonSas = async (lab: IpsecLab, gw: Gateway) => {
    const vici = await ViciClient.connect(lab.vici(gw));
    try {
      const items = await vici.stream('list-sas', 'list-sa', { ike: 'qkd' });
      return items.flatMap((m) => Object.values(m)) as Array<Record<string, unknown>>;
    } finally {
      vici.close();
    }
  };
  /** charon's established IKE SAs authenticated with this PPK_ID (per its log), `ppk = yes` in list-sas. */
  const charonSasWithPpk = async (lab: IpsecLab, gw: Gateway, keyId: string) => {
    const ppkIds = charonPpkIds(lab.log(gw));
    return (await charonSas(lab, gw)).filter(
      (sa) => sa['state'] === 'ESTABLISHED' && sa['ppk'] === 'yes' && ppkIds.get(String(sa['uniqueid'])) === keyId,
    );
  };
  const assertUsePpkBothWays = (ike: IkeEvidence[]) => {
    const init = ike.filter((m) => m.exchange === IKE_SA_INIT);
    assert.ok(init.find((m) => !m.response)?.notifies.includes(USE_PPK), `USE_PPK in the IKE_SA_INIT request`);
    assert.ok(init.find((m) => m.response)?.notifies.includes(USE_PPK), 'USE_PPK in the IKE_SA_INIT response');
  };
  const newKey = async (a: AgentProcess, event: string, not: string) => {
    await eventually(() => a.of(event).some((e) => e['key_ID'] !== not), 30_000, `${event} of a new key`);
    return String(a.of(event).find((e) => e['key_ID'] !== not)!['key_ID']);
  };

  describe('strongSwan initiates, Libreswan responds', () => {
    const ctx = labOf({ a: 'strongswan', b: 'libreswan' });

    it('IKE SA with the QKD key as PPK (PPK_ID = key ID in pluto); the Child SA is refused; a rotation brings a new IKE SA with the next key', async (t) => {
      const { lab } = ctx;
      const [port] = await freePorts(1);
      const capture = await lab.capture(lab.a);
      const responder = await agent(ctx, lab.b, port!);
      const initiator = await agent(ctx, lab.a, port!);
      const [installed] = await responder.waitFor('ppk-installed');
      const first = String(installed!['key_ID']);
      await eventually(
        async () => (await charonSasWithPpk(lab, lab.a, first)).length > 0,
        20_000,
        `charon: an IKE SA with PPK ${first}`,
      );
      assertUsePpkBothWays(await capture.stop());
      const pluto = lab.log(lab.b);
      assert.match(
        pluto,
        /IKE=AES_CBC_256-HMAC_SHA2_256-HMAC_SHA2_256_128-CURVE25519 chosen/,
        'default proposals agree',
      );
      assert.match(pluto, /PPK AUTH calculated as responder/);
      assert.match(pluto, /responder established IKE SA; authenticated peer using authby=secret/);
      assert.deepEqual([...new Set(ppkIdsSeen(pluto))], [first], 'pluto received the QKD key ID as PPK_ID');

      // The Child SA: pluto agrees on it, cannot install its ESP SA, and answers TS_UNACCEPTABLE;
      // charon keeps the IKE SA, and the agent counts the connection as not established.
      assert.match(pluto, /ESP=AES_CBC_256-HMAC_SHA2_256_128-DISABLED SPI=[0-9a-f]+ chosen/);
      assert.match(pluto, /netlink response for Add SA esp\.[0-9a-f]+@[\d.]+: Protocol not supported/);
      assert.match(lab.log(lab.a), /received TS_UNACCEPTABLE notify, no CHILD_SA built/);
      const [failure] = await initiator.waitFor('failure', 1, 20_000);
      assert.equal(failure!['code'], 'establish_failed');
      assert.match(String(failure!['message']), /establishing CHILD_SA 'net' failed.*keeping IKE_SA/);
      assert.equal(initiator.of('ike-sa-up').length, 0, 'no ike-sa-up: there is no Child SA');
      // Its retries asked the IKE SA charon had for a Child SA (CREATE_CHILD_SA), refused the same way.
      assert.equal((await charonSasWithPpk(lab, lab.a, first)).length, 1, 'one IKE SA for the first key');
      assert.match(lab.log(lab.b), /CREATE_CHILD_SA request failed/);

      const before = new Set((await charonSas(lab, lab.a)).map((sa) => String(sa['uniqueid'])));
      initiator.child.kill('SIGHUP');
      const second = await newKey(responder, 'ppk-installed', first);
      await eventually(
        async () => (await charonSasWithPpk(lab, lab.a, second)).some((sa) => !before.has(String(sa['uniqueid']))),
        30_000,
        `charon: a new IKE SA with PPK ${second}`,
      );
      const ids = ppkIdsSeen(lab.log(lab.b));
      assert.deepEqual([...new Set(ids)], [first, second], 'pluto received the next key ID');
      assert.ok(
        ids.slice(ids.indexOf(second)).every((id) => id === second),
        'and the first no more',
      );
      // One per key: the agent closes none, as none counted as established.
      const held = (await charonSas(lab, lab.a)).length;
      t.diagnostic(`charon holds ${held} IKE SAs for 2 keys`);
      for (const a of ctx.agents.splice(0)) assert.equal(await a.stop(), 0);
    });

    it('refuses a different PPK under the same ID: AUTH_FAILED, no IKE SA', async () => {
      await refusedMismatch(ctx.lab);
      assert.match(
        ctx.lab.log(ctx.lab.b),
        /authentication failed: computed hash does not match hash received from peer/,
      );
      assert.match(ctx.lab.log(ctx.lab.a), /received AUTHENTICATION_FAILED notify error/);
    });
  });

  describe('Libreswan initiates, strongSwan responds', () => {
    const ctx = labOf({ a: 'libreswan', b: 'strongswan' });

    it('IKE SA with the QKD key as PPK (PPK_ID = key ID in charon); pluto drops it when its Child SA fails; a rotation brings a new IKE SA with the next key', async (t) => {
      const { lab } = ctx;
      const [port] = await freePorts(1);
      const capture = await lab.capture(lab.a);
      await agent(ctx, lab.b, port!);
      const initiator = await agent(ctx, lab.a, port!);
      const [up] = await initiator.waitFor('ike-sa-up');
      const first = String(up!['key_ID']);
      await eventually(
        async () => (await charonSasWithPpk(lab, lab.b, first)).length > 0,
        20_000,
        `charon: an IKE SA with PPK ${first}`,
      );
      assertUsePpkBothWays(await capture.stop());
      const charon = lab.log(lab.b);
      assert.match(charon, /selected proposal: IKE:AES_CBC_256\/HMAC_SHA2_256_128\/PRF_HMAC_SHA2_256\/CURVE_25519/);
      assert.match(charon, new RegExp(`using PPK for PPK_ID '${first}'`), 'charon received the QKD key ID as PPK_ID');
      assert.match(lab.log(lab.a), new RegExp(`#${String(up!['ike_SA'])}: PPK AUTH calculated as initiator`));

      // The Child SA: charon installs its end (user-space ESP); pluto cannot install its own and
      // deletes the whole IKE SA without telling charon, then brings the connection back itself.
      assert.match(charon, /CHILD_SA net\{\d+\} established/);
      const ikeSa = String(up!['ike_SA']);
      await eventually(
        () => new RegExp(`#${ikeSa}: deleting IKE SA but connection is supposed to remain up`).test(lab.log(lab.a)),
        10_000,
        "pluto's deletion of the IKE SA",
      );
      assert.match(lab.log(lab.a), new RegExp(`#${ikeSa}: deleting state .* and NOT sending notification`));
      assert.match(lab.log(lab.a), /netlink response for Add SA esp\.[0-9a-f]+@[\d.]+: Protocol not supported/);
      const [down] = await initiator.waitFor('failure', 1, 10_000);
      assert.equal(down!['code'], 'sa_down', 'the agent sees the IKE SA go');

      initiator.child.kill('SIGHUP');
      const second = await newKey(initiator, 'ike-sa-up', first);
      const ups = initiator.of('ike-sa-up').filter((e) => e['key_ID'] === second);
      assert.notEqual(ups[0]!['ike_SA'], up!['ike_SA'], 'a new IKE SA');
      await eventually(
        async () => (await charonSasWithPpk(lab, lab.b, second)).length > 0,
        20_000,
        `charon: an IKE SA with PPK ${second}`,
      );
      const charonUp = (await charonSas(lab, lab.b)).filter((sa) => sa['state'] === 'ESTABLISHED').length;
      const plutoUp = (await gatewayOf(lab, lab.a).sas()).filter((sa) => sa.state === 'ESTABLISHED').length;
      t.diagnostic(`established IKE SAs: charon ${charonUp}, pluto ${plutoUp}`);
      assert.ok(charonUp > plutoUp, 'charon keeps the IKE SAs pluto deleted unannounced');
      for (const a of ctx.agents.splice(0)) assert.equal(await a.stop(), 0);
    });

    it('refuses a different PPK under the same ID: AUTH_FAILED, no IKE SA', async () => {
      await refusedMismatch(ctx.lab);
      assert.match(ctx.lab.log(ctx.lab.b), /generating IKE_AUTH response 1 \[ N\(AUTH_FAILED\) \]/);
      assert.match(ctx.lab.log(ctx.lab.a), /IKE SA authentication request rejected by peer: AUTHENTICATION_FAILED/);
    });
  });
});

/** The gateway of each end, in process, with the connection the agents' configurations describe. */
function gatewayOf(lab: IpsecLab, gw: Gateway): IpsecGateway {
  const peer = lab.peer(gw);
  const connection: IpsecConnection = {
    name: 'qkd',
    localAddr: gw.outer,
    remoteAddr: peer.outer,
    localId: gw.id,
    remoteId: peer.id,
    ikeSecret: readFileSync(lab.ikeSecretFile, 'utf8').trim(),
    localTs: `${gw.inner}/32`,
    remoteTs: `${peer.inner}/32`,
    ppkRequired: true,
  };
  return lab.daemonOf(gw) === 'strongswan'
    ? new StrongSwanGateway({ vici: lab.vici(gw), connection })
    : new LibreswanGateway({
        ctlSocket: lab.ctlSocket(gw),
        secretsFile: lab.agentSecrets(gw),
        dir: join(gw.dir, 'agent-in-process'),
        libexec: lab.libexec,
        connection,
      });
}

/**
 * The agents with their rings fed by hand: the responder holds another PPK under the key's ID.
 * The initiator reports AUTH_FAILED, neither daemon holds an established IKE SA, and neither
 * daemon's log holds either key.
 */
async function refusedMismatch(lab: IpsecLab): Promise<void> {
  const gateways = { a: gatewayOf(lab, lab.a), b: gatewayOf(lab, lab.b) };
  const rings = { a: new KeyRing(), b: new KeyRing() };
  const a = new IpsecAgent({
    role: 'initiator',
    gateway: gateways.a,
    keys: rings.a,
    peerInstallWaitMs: 500,
    retryMs: 60_000,
  });
  const b = new IpsecAgent({ role: 'responder', gateway: gateways.b, keys: rings.b });
  const failures: Array<{ code: string; keyId?: string }> = [];
  a.on('failure', (f) => failures.push(f));
  const key = { keyId: randomUUID(), key: randomBytes(32) };
  const other = Buffer.from(key.key);
  other[0]! ^= 1;
  try {
    await b.start();
    await a.start();
    rings.b.add({ keyId: key.keyId, key: Buffer.from(other) });
    await b.settled();
    rings.a.add({ keyId: key.keyId, key: Buffer.from(key.key) });
    await a.settled();
    assert.deepEqual(
      failures.map((f) => [f.code, f.keyId]),
      [['auth_failed', key.keyId]],
      'one AUTH_FAILED for the key',
    );
    assert.equal(a.current, undefined, 'no IKE SA in use');
    for (const g of ['a', 'b'] as const) {
      const established = (await gateways[g].sas()).filter((s) => s.state === 'ESTABLISHED');
      assert.deepEqual(established, [], `${g} (${lab.daemonOf(lab[g])}): no established IKE SA`);
    }
  } finally {
    await a.stop();
    await b.stop();
  }
  for (const g of [lab.a, lab.b]) {
    for (const k of [key.key, other]) assert.ok(!logHoldsKey(lab.log(g), k), `no key bytes in ${g.name}'s log`);
  }
}
