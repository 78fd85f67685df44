import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, afterEach, before, describe, it } from 'node:test';
import type { IpsecAgentConfig } from '../../../src/integrations/ipsec/agent-config.js';
import { ViciClient } from '../../../src/integrations/ipsec/vici/client.js';
import type { ViciMessage } from '../../../src/integrations/ipsec/vici/message.js';
import { freePorts } from '../../../src/cli/ports.js';
import { AgentProcess, startDemo } from '../../helpers/ipsec-agents.js';
import { IpsecLab, type Gateway } from '../../helpers/ipsec-lab.js';
import { eventually } from '../../helpers/two-kmes.js';

const CONN = 'corp';
const PPK_ID = 'corp-qkd';
/** A second inner address per gateway, for the second child. */
const second = (g: Gateway) => g.inner.replace(/\.1$/, '.2');

/**
 * The operator's own swanctl.conf: certificate authentication, two children, a fixed ppk_id. The
 * agent is told only the connection's name.
 */
function operatorConfig(lab: IpsecLab, g: Gateway, ppkId: string): string {
  const peer = lab.peer(g);
  const child = (local: string, remote: string) =>
    `{\n        local_ts = ${local}/32\n        remote_ts = ${remote}/32\n        esp_proposals = aes256-sha256\n      }`;
  return `connections {
  ${CONN} {
    version = 2
    local_addrs = ${g.outer}
    remote_addrs = ${peer.outer}
    proposals = aes256-sha256-x25519
    ppk_id = ${ppkId}
    ppk_required = yes
    local {
      auth = pubkey
      certs = ${g.name}.pem
      id = ${g.id}
    }
    remote {
      auth = pubkey
      id = ${peer.id}
    }
    children {
      lan ${child(g.inner, peer.inner)}
      voice ${child(second(g), second(peer))}
    }
  }
}
`;
}

/** A CA and a certificate per gateway (RSA: this charon verifies with gmp), in swanctl's layout. */
function issueCertificates(lab: IpsecLab): void {
  const ca = join(lab.root, 'ca');
  mkdirSync(ca, { recursive: true });
  const openssl = (...args: string[]) => execFileSync('openssl', args, { stdio: ['ignore', 'pipe', 'pipe'] });
  const caExt = ['-addext', 'basicConstraints=critical,CA:true', '-addext', 'keyUsage=critical,keyCertSign,cRLSign'];
  const caFiles = ['-keyout', join(ca, 'ca.key'), '-out', join(ca, 'ca.pem')];
  openssl(
    'req',
    '-x509',
    '-newkey',
    'rsa:2048',
    '-nodes',
    '-subj',
    '/CN=QKS test gateway CA',
    '-days',
    '2',
    ...caFiles,
    ...caExt,
  );
  for (const g of [lab.a, lab.b]) {
    const dir = join(g.dir, 'swanctl');
    for (const sub of ['x509', 'x509ca', 'private']) mkdirSync(join(dir, sub), { recursive: true });
    writeFileSync(join(dir, 'x509ca', 'ca.pem'), readFileSync(join(ca, 'ca.pem')));
    const csr = join(lab.root, `${g.name}.csr`);
    const ext = join(lab.root, `${g.name}.ext`);
    writeFileSync(ext, `subjectAltName=DNS:${g.id}\nkeyUsage=critical,digitalSignature\n`);
    openssl(
      'req',
      '-newkey',
      'rsa:2048',
      '-nodes',
      '-subj',
      `/CN=${g.id}`,
      '-keyout',
      join(dir, 'private', `${g.name}.key`),
      '-out',
      csr,
    );
    const signer = ['-CA', join(ca, 'ca.pem'), '-CAkey', join(ca, 'ca.key'), '-CAcreateserial'];
    openssl(
      'x509',
      '-req',
      '-in',
      csr,
      ...signer,
      '-days',
      '2',
      '-extfile',
      ext,
      '-out',
      join(dir, 'x509', `${g.name}.pem`),
    );
  }
}

/** What the operator runs: `swanctl --load-all` with the gateway's own swanctl directory. */
function loadAll(lab: IpsecLab, g: Gateway, ppkId = PPK_ID): void {
  const dir = join(g.dir, 'swanctl');
  const conf = join(dir, 'swanctl.conf');
  writeFileSync(conf, operatorConfig(lab, g, ppkId));
  const load = spawnSync('swanctl', ['--load-all', '--noprompt', '--uri', lab.vici(g), '--file', conf], {
    encoding: 'utf8',
    env: { ...process.env, SWANCTL_DIR: dir },
  });
  assert.equal(load.status, 0, `${load.stdout}${load.stderr}`);
}

/** The agent's configuration: the connection by name, nothing else of it. */
function attachedAgent(lab: IpsecLab, g: Gateway, manifest: string, agreePort: number, name = CONN): AgentProcess {
  const initiator = g === lab.a;
  const config: IpsecAgentConfig = {
    sae: { id: initiator ? 'sae-a1' : 'sae-b1', manifest },
    peer: initiator ? 'sae-b1' : 'sae-a1',
    role: initiator ? 'initiator' : 'responder',
    agree: { host: '127.0.0.1', port: agreePort },
    rotation: { every_seconds: 3600 },
    daemon: { type: 'strongswan', vici: lab.vici(g) },
    connection: { defined_by: 'operator', name },
  };
  const file = join(g.dir, `attached-${agreePort}.json`);
  writeFileSync(file, JSON.stringify(config, null, 2));
  return new AgentProcess(file);
}

async function ikeSas(lab: IpsecLab, g: Gateway): Promise<ViciMessage[]> {
  const vici = await ViciClient.connect(lab.vici(g));
  try {
    return (await vici.stream('list-sas', 'list-sa', { ike: CONN })).map((m) => m[CONN] as ViciMessage);
  } finally {
    vici.close();
  }
}

describe("IPsec with QKD PPKs on the operator's own strongSwan connection: certificates, two children", () => {
  const lab = new IpsecLab('strongswan');
  let demo: Awaited<ReturnType<typeof startDemo>>;
  const agents: AgentProcess[] = [];
  const start = async (g: Gateway, port: number, name?: string) => {
    const a = attachedAgent(lab, g, demo.manifest, port, name);
    agents.push(a);
    return a;
  };

  before(async () => {
    await lab.start();
    for (const g of [lab.a, lab.b]) execFileSync('ip', ['-n', g.ns, 'addr', 'add', `${second(g)}/32`, 'dev', 'lo']);
    issueCertificates(lab);
    for (const g of [lab.a, lab.b]) loadAll(lab, g);
    demo = await startDemo();
  });
  afterEach(async () => {
    for (const a of agents.splice(0)) await a.stop('SIGKILL');
  });
  after(async () => {
    await demo?.stop();
    await lab.stop();
  });

  it('brings up both children with certificate authentication and the QKD key as PPK, and rotates by reauthentication', async () => {
    const [port] = await freePorts(1);
    const responder = await start(lab.b, port!);
    await responder.waitFor('running');
    const initiator = await start(lab.a, port!);
    const [first] = await initiator.waitFor('ike-sa-up');
    const [sa] = await ikeSas(lab, lab.a);
    assert.equal(sa!['state'], 'ESTABLISHED');
    assert.equal(sa!['ppk'], 'yes', 'the IKE SA used the PPK');
    assert.deepEqual(
      Object.keys(sa!['child-sas'] as ViciMessage)
        .map((k) => k.replace(/-\d+$/, ''))
        .sort(),
      ['lan', 'voice'],
    );
    // The operator's authentication: each side checked the other's certificate from the CA.
    for (const g of [lab.a, lab.b]) {
      assert.match(lab.log(g), new RegExp(`authentication of '${lab.peer(g).id}' with RSA\\S* successful`));
      assert.match(lab.log(g), new RegExp(`using PPK for PPK_ID '${PPK_ID}'`));
    }
    assert.equal(
      (await lab.pingResult(lab.a, { count: 3, intervalS: 0.1, src: lab.a.inner, dst: lab.b.inner })).received,
      3,
      'traffic through the first child',
    );
    assert.equal(
      (await lab.pingResult(lab.a, { count: 3, intervalS: 0.1, src: second(lab.a), dst: second(lab.b) })).received,
      3,
      'traffic through the second child',
    );

    // A rotation: a new key behind the same PPK_ID, a new IKE SA by reauthentication, both children in it.
    const traffic = lab.pingResult(lab.a, { count: 30, intervalS: 0.1, src: lab.a.inner, dst: lab.b.inner });
    initiator.child.kill('SIGHUP');
    const ups = await initiator.waitFor('ike-sa-up', 2, 30_000);
    assert.notEqual(ups[1]!['key_ID'], first!['key_ID'], 'a new QKD key');
    assert.notEqual(ups[1]!['ike_SA'], first!['ike_SA'], 'a new IKE SA');
    assert.ok((await traffic).received >= 29, 'at most one reply lost during the reauthentication');
    await eventually(async () => (await ikeSas(lab, lab.a)).length === 1, 15_000, 'the old IKE SA closed');
    const [next] = await ikeSas(lab, lab.a);
    assert.equal(next!['uniqueid'], ups[1]!['ike_SA']);
    assert.equal(next!['ppk'], 'yes');
    assert.equal(Object.keys(next!['child-sas'] as ViciMessage).length, 2, 'both children moved to the new IKE SA');
    assert.equal(
      (await lab.pingResult(lab.a, { count: 3, intervalS: 0.1, src: second(lab.a), dst: second(lab.b) })).received,
      3,
    );
  });

  it("survives the operator's swanctl --load-all, which unloads the agent's PPK: it is loaded again and the next rotation works", async () => {
    const [port] = await freePorts(1);
    const responder = await start(lab.b, port!);
    await responder.waitFor('running');
    const initiator = await start(lab.a, port!);
    const [first] = await initiator.waitFor('ike-sa-up');
    for (const g of [lab.a, lab.b]) loadAll(lab, g);
    await Promise.all([initiator.waitFor('restored', 1, 10_000), responder.waitFor('restored', 1, 10_000)]);
    initiator.child.kill('SIGHUP');
    const ups = await initiator.waitFor('ike-sa-up', 2, 30_000);
    assert.notEqual(ups[1]!['key_ID'], first!['key_ID']);
    assert.equal(
      (await lab.pingResult(lab.a, { count: 3, intervalS: 0.1, src: second(lab.a), dst: second(lab.b) })).received,
      3,
    );
  });

  it('a gateway whose ppk_id differs refuses the reauthentication (AUTH_FAILED); the SA that was up stays up', async () => {
    const [port] = await freePorts(1);
    const responder = await start(lab.b, port!);
    await responder.waitFor('running');
    const initiator = await start(lab.a, port!);
    const [first] = await initiator.waitFor('ike-sa-up');
    // The responder's operator changes its ppk_id: its agent moves the PPK to the new ID.
    loadAll(lab, lab.b, 'another-id');
    await responder.waitFor('restored', 1, 10_000);
    try {
      initiator.child.kill('SIGHUP');
      const [failure] = await initiator.waitFor('failure', 1, 30_000);
      assert.equal(failure!['code'], 'auth_failed', JSON.stringify(failure));
      assert.deepEqual(
        (await ikeSas(lab, lab.a)).map((s) => s['uniqueid']),
        [first!['ike_SA']],
        'the old IKE SA is still the one up',
      );
      assert.equal(
        (await lab.pingResult(lab.a, { count: 3, intervalS: 0.1, src: lab.a.inner, dst: lab.b.inner })).received,
        3,
        'and still carries traffic',
      );
    } finally {
      loadAll(lab, lab.b);
    }
  });

  it('after a charon restart and the operator loading its files again, the PPK is back and the tunnel comes up again', async () => {
    const [port] = await freePorts(1);
    const responder = await start(lab.b, port!);
    await responder.waitFor('running');
    const initiator = await start(lab.a, port!);
    const [first] = await initiator.waitFor('ike-sa-up');
    for (const g of [lab.a, lab.b]) await lab.stopDaemon(g);
    for (const g of [lab.a, lab.b]) await lab.startDaemon(g);
    // What the stock strongswan service does at start.
    for (const g of [lab.a, lab.b]) loadAll(lab, g);
    const ups = await initiator.waitFor('ike-sa-up', 2, 30_000);
    assert.equal(ups[1]!['key_ID'], first!['key_ID'], 'the key both gateways still hold');
    assert.equal(
      (await lab.pingResult(lab.a, { count: 3, intervalS: 0.1, src: lab.a.inner, dst: lab.b.inner })).received,
      3,
    );
    assert.equal(
      (await lab.pingResult(lab.a, { count: 3, intervalS: 0.1, src: second(lab.a), dst: second(lab.b) })).received,
      3,
    );
  });

  it('refuses to start on a connection charon does not have, saying what to do', async () => {
    const [port] = await freePorts(1);
    const agent = await start(lab.a, port!, 'absent');
    const code = await new Promise((r) => agent.child.once('exit', r));
    assert.notEqual(code, 0);
    assert.match(
      agent.stderr,
      /no connection "absent" is loaded: define it in swanctl.conf and run swanctl --load-all/,
    );
  });
});
