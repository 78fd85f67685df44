import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { closeSync, mkdirSync, mkdtempSync, openSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { connect as tcpConnect } from 'node:net';
import { get as httpsGet } from 'node:https';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { connect as tlsConnect } from 'node:tls';
import { parse } from 'yaml';
import { freePorts } from '../../src/cli/ports.js';
import { checkConfigFiles } from '../../src/kme/config-files.js';
import { loadConfig } from '../../src/kme/config.js';
import { eventually } from '../helpers/two-kmes.js';

const BIN = join(process.cwd(), 'bin', 'qks.js');
const TEMPLATE = join(process.cwd(), 'packaging', 'cloud-init', 'qks-kme.user-data.yaml');
const FILL = join(process.cwd(), 'packaging', 'cloud-init', 'fill.sh');
const UNIT = join(process.cwd(), 'packaging', 'systemd', 'qks-kme@.service');

// Two networks on one machine: loopback addresses stand for the VM's private and provider ones.
const PRIVATE = '127.0.0.1';
const PROVIDER = '127.0.0.2';
const PEER_PROVIDER = '127.0.0.3';

interface WriteFile {
  path: string;
  content: string;
  encoding?: string;
  permissions?: string;
}

const run = (cmd: string, args: string[]) => spawnSync(cmd, args, { encoding: 'utf8' });
/** Debian 12's cloud-init 22.4: `--annotate` exits 0 on a YAML error and fails on some schema errors, so not used. */
const schema = (file: string) => run('cloud-init', ['schema', '--config-file', file]);
const qks = (...args: string[]) => {
  const r = run(process.execPath, [BIN, ...args]);
  assert.equal(r.status, 0, `qks ${args.join(' ')}: ${r.stderr}`);
  return r.stdout;
};

/** Whether a TCP connection to host:port is accepted (false when refused). */
const accepts = (host: string, port: number) =>
  new Promise<boolean>((resolve) => {
    const s = tcpConnect({ host, port });
    s.once('connect', () => {
      s.destroy();
      resolve(true);
    });
    s.once('error', () => resolve(false));
  });

/**
 * packaging/cloud-init/qks-kme.user-data.yaml, checked by Debian's own cloud-init and by QKS itself:
 * filled as docs/operations.md says (a `qks init` site, the channel certificate issued again for the
 * provider address), its files laid out under a temporary root, its KME configuration loaded and
 * run. No VM is booted: docs/operations.md ("Cloud placement") says what that leaves unexercised.
 */
describe('cloud-init user-data for a KME on a VM with two networks', () => {
  const dir = mkdtempSync(join(tmpdir(), 'qks-cloud-init-'));
  const site = join(dir, 'site');
  const filled = join(dir, 'kme-a.user-data.yaml');
  const root = join(dir, 'root');
  let kme: ChildProcess | undefined;
  let files: WriteFile[] = [];
  let runcmd: unknown;

  before(() => {
    qks('init', '--dir', site, '--kmes', 'kme-a,kme-b', '--host', PRIVATE, '--ports', 'auto');
    qks('pki', 'issue', '--dir', site, '--kme', 'kme-a', '--host', PROVIDER);
    const pki = (f: string) => `@${join(site, 'pki', f)}`;
    const fill = run(FILL, [
      TEMPLATE,
      'QKS_SOURCE=https://git.example.org/qks.git',
      'QKS_REF=main',
      'NODE_URL=https://downloads.example.org/node-v20.19.0-linux-x64.tar.xz',
      `NODE_SHA256=${'0'.repeat(64)}`,
      'KME_ID=kme-a',
      `PRIVATE_ADDRESS=${PRIVATE}`,
      `PROVIDER_ADDRESS=${PROVIDER}`,
      'PEER_KME_ID=kme-b',
      `PEER_PROVIDER_ADDRESS=${PEER_PROVIDER}`,
      'SAE_ID=sae-a1',
      'PEER_SAE_ID=sae-b1',
      'LINK_ID=link-a-b',
      'LINK_FIRST_KME=kme-a',
      'LINK_SECOND_KME=kme-b',
      `SAE_CA_PEM=${pki('sae-ca.pem')}`,
      `SAE_CA_CRL=${pki('sae-ca.crl.pem')}`,
      `KME_CA_PEM=${pki('kme-ca.pem')}`,
      `KME_CA_CRL=${pki('kme-ca.crl.pem')}`,
      `SAE_API_CERT=${pki('kme-a/sae-api.pem')}`,
      `SAE_API_KEY=${pki('kme-a/sae-api.key')}`,
      `KME_API_CERT=${pki('kme-a/kme-api.pem')}`,
      `KME_API_KEY=${pki('kme-a/kme-api.key')}`,
    ]);
    assert.equal(fill.status, 0, fill.stderr);
    writeFileSync(filled, fill.stdout);
    const doc = parse(fill.stdout) as { write_files: WriteFile[]; runcmd: unknown };
    files = doc.write_files;
    runcmd = doc.runcmd;
  });

  after(() => {
    kme?.kill('SIGKILL');
    rmSync(dir, { recursive: true, force: true });
  });

  const file = (path: string): WriteFile => {
    const f = files.find((x) => x.path === path);
    assert.ok(f, `the user-data writes ${path}`);
    return f;
  };
  const script = () => file('/usr/local/sbin/qks-cloud-install').content;

  it('cloud-init schema finds it valid, as shipped and filled', () => {
    for (const f of [TEMPLATE, filled]) {
      const r = schema(f);
      assert.equal(r.status, 0, `${f}: ${r.stdout}${r.stderr}`);
      assert.match(r.stdout, /^Valid cloud-config/);
    }
  });

  it('cloud-init schema refuses a broken copy (so the check above can fail)', () => {
    const broken = join(dir, 'broken.yaml');
    const text = readFileSync(TEMPLATE, 'utf8');
    // A typo in a write_files entry, and a list given as a string.
    writeFileSync(
      broken,
      text.replace('    content: |', '    contents: |').replace(/^packages:\n(?: {2}.*\n)+/m, 'packages: git\n'),
    );
    const r = schema(broken);
    assert.notEqual(r.status, 0, 'a broken user-data file is refused');
    assert.match(r.stderr, /'contents' was unexpected/);
    assert.match(r.stderr, /packages: 'git' is not of type 'array'/);
    const headless = join(dir, 'headless.yaml');
    writeFileSync(headless, text.replace(/^#cloud-config\n/, ''));
    assert.notEqual(schema(headless).status, 0, 'user-data without its #cloud-config line is refused');
  });

  it('fill.sh refuses a name the template lacks and prints nothing while a placeholder is left', () => {
    const unknown = run(FILL, [TEMPLATE, 'NO_SUCH_NAME=1']);
    assert.equal(unknown.status, 2);
    assert.match(unknown.stderr, /no @@NO_SUCH_NAME@@/);
    const partial = run(FILL, [TEMPLATE, 'KME_ID=kme-a']);
    assert.equal(partial.status, 1);
    assert.equal(partial.stdout, '');
    assert.match(partial.stderr, /still to fill: .*@@PRIVATE_ADDRESS@@/);
    assert.doesNotMatch(readFileSync(filled, 'utf8'), /@@[A-Z0-9_]+@@/);
  });

  it('the KME configuration it writes passes QKS checks: SAE API on the private address, channel on the provider one', () => {
    // The files as cloud-init would write them, under a temporary root.
    for (const f of files) {
      const target = join(root, f.path);
      mkdirSync(dirname(target), { recursive: true });
      writeFileSync(target, f.encoding === 'b64' ? Buffer.from(f.content, 'base64') : f.content);
    }
    // What the install script makes on the VM: the data_dir, its master key and the link's device seed.
    const dataDir = join(root, 'var/lib/qks/kme-a');
    mkdirSync(dataDir, { recursive: true, mode: 0o700 });
    writeFileSync(join(dataDir, 'master.key'), randomBytes(32), { mode: 0o600 });
    writeFileSync(join(dataDir, 'link-a-b.seed'), randomBytes(32).toString('hex') + '\n', { mode: 0o600 });

    const asWritten = JSON.parse(file('/etc/qks/kme-a.json').content) as Record<string, unknown>;
    assert.equal(asWritten['data_dir'], '/var/lib/qks/kme-a');
    const configFile = join(root, 'etc/qks/kme-a.json');
    const text = file('/etc/qks/kme-a.json')
      .content.replaceAll('"/etc/qks/', `"${root}/etc/qks/`)
      .replaceAll('"/var/lib/qks/', `"${root}/var/lib/qks/`);
    writeFileSync(configFile, text);
    const cfg = loadConfig(configFile);
    checkConfigFiles(cfg);
    assert.equal(cfg.sae_api.host, PRIVATE);
    assert.equal(cfg.kme_api.host, PROVIDER);
    assert.deepEqual(cfg.peers, [{ kme_id: 'kme-b', url: `https://${PEER_PROVIDER}:9443` }]);
    assert.equal(cfg.crl.renew, false, 'the CA keys are not on the VM');
    assert.deepEqual(
      cfg.access.operators,
      ['operator'],
      'the operator certificate of qks init may read the health check',
    );
    assert.deepEqual(
      cfg.links.map((l) => [l.id, l.endpoints, l.source.type]),
      [['link-a-b', ['kme-a', 'kme-b'], 'qkd']],
    );
  });

  it('the unit it installs is packaging/systemd/qks-kme@.service itself, and the paths agree with it', () => {
    const unit = readFileSync(UNIT, 'utf8');
    const user = /^User=(.+)$/m.exec(unit)?.[1];
    const execStart = /^ExecStart=(\S+) (\S+) kme --config (\S+)$/m.exec(unit);
    const state = /^StateDirectory=(.+)$/m.exec(unit)?.[1];
    assert.ok(user && execStart && state, 'the unit names its user, program and state directory');
    const [, node, bin, config] = execStart;
    const s = script();
    // Copied from the QKS tree the VM installs: no second copy of the unit to drift.
    assert.match(
      s,
      /^install -m 0644 \/opt\/qks\/packaging\/systemd\/qks-kme@\.service \/etc\/systemd\/system\/qks-kme@\.service$/m,
    );
    assert.doesNotMatch(readFileSync(TEMPLATE, 'utf8'), /^\s*(\[Service\]|ExecStart=)/m);
    assert.equal(bin, '/opt/qks/bin/qks.js');
    assert.match(s, /git clone .* \/opt\/qks\b/);
    assert.ok(s.includes(`ln -sfn /opt/node/bin/node ${node}`), `the script puts node at ${node}`);
    assert.match(s, new RegExp(`useradd --system .* ${user}$`, 'm'));
    const written = JSON.parse(file(config!.replace('%i', 'kme-a')).content) as { data_dir: string };
    assert.equal(written.data_dir, `/var/lib/${state.replace('%i', 'kme-a')}`, 'data_dir is the unit state directory');
    assert.match(s, /^\s*systemctl enable "qks-kme@\$KME_ID"$/m);
    assert.deepEqual(runcmd, [['/usr/local/sbin/qks-cloud-install']]);
  });

  it('its install script is valid bash', () => {
    const f = join(dir, 'qks-cloud-install');
    writeFileSync(f, script());
    const r = run('bash', ['-n', f]);
    assert.equal(r.status, 0, r.stderr);
  });

  it('a KME runs from that configuration: SAEs reach it on the private address only, peers on the provider one only', async () => {
    const [saePort, kmePort] = await freePorts(2);
    const configFile = join(root, 'etc/qks/kme-a.json');
    const text = readFileSync(configFile, 'utf8')
      .replace('"port": 8443', `"port": ${saePort}`)
      .replace('"port": 9443', `"port": ${kmePort}`);
    writeFileSync(configFile, text);
    const out = openSync(join(dir, 'kme-a.out'), 'a');
    kme = spawn(process.execPath, [BIN, 'kme', '--config', configFile], { stdio: ['ignore', out, out] });
    closeSync(out);
    await eventually(() => accepts(PROVIDER, kmePort!), 30_000, 'the KME channel on the provider address').catch(
      (err: Error) => assert.fail(`${err.message}; the KME said: ${readFileSync(join(dir, 'kme-a.out'), 'utf8')}`),
    );
    await eventually(() => accepts(PRIVATE, saePort!), 5_000, 'the SAE API on the private address');
    assert.equal(await accepts(PROVIDER, saePort!), false, 'no SAE API on the provider address');
    assert.equal(await accepts(PRIVATE, kmePort!), false, 'no KME channel on the private address');

    // An SAE checks the KME's certificate against the private address, as a client on the private network would.
    const status = qks(
      'sae',
      'status',
      '--sae',
      'sae-a1',
      '--kme',
      `https://${PRIVATE}:${saePort}`,
      '--ca',
      join(site, 'pki/sae-ca.pem'),
      '--cert',
      join(site, 'pki/saes/sae-a1.pem'),
      '--key',
      join(site, 'pki/saes/sae-a1.key'),
      '--slave',
      'sae-b1',
    );
    assert.equal((JSON.parse(status) as { source_KME_ID: string }).source_KME_ID, 'kme-a');

    // The peer's side: the channel's certificate (issued again with --host) names the provider address.
    const authorized = await new Promise<boolean>((resolve, reject) => {
      const s = tlsConnect({
        host: PROVIDER,
        port: kmePort!,
        ca: readFileSync(join(site, 'pki/kme-ca.pem')),
        cert: readFileSync(join(site, 'pki/kme-b/kme-api.pem')),
        key: readFileSync(join(site, 'pki/kme-b/kme-api.key')),
      });
      s.once('secureConnect', () => {
        resolve(s.authorized);
        s.destroy();
      });
      s.once('error', reject);
    });
    assert.equal(authorized, true);

    // The operator certificate qks init makes reads the health check (docs/operations.md).
    const health = await new Promise<{ code: number; body: { KME_ID?: string; checks?: unknown[] } }>(
      (resolve, reject) => {
        const req = httpsGet(
          {
            host: PRIVATE,
            port: saePort!,
            path: '/api/v1/admin/health',
            ca: readFileSync(join(site, 'pki/sae-ca.pem')),
            cert: readFileSync(join(site, 'pki/operators/operator.pem')),
            key: readFileSync(join(site, 'pki/operators/operator.key')),
          },
          (res) => {
            let text = '';
            res.on('data', (c: Buffer) => (text += c.toString()));
            res.on('end', () => resolve({ code: res.statusCode ?? 0, body: JSON.parse(text) as { KME_ID?: string } }));
          },
        );
        req.once('error', reject);
      },
    );
    assert.ok([200, 503].includes(health.code), `health answered ${health.code}`);
    assert.equal(health.body.KME_ID, 'kme-a');
    assert.ok(Array.isArray(health.body.checks));
    kme.kill('SIGTERM');
  });
});
