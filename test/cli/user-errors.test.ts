import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { Manifest } from '../../src/cli/manifest.js';

const BIN = join(process.cwd(), 'bin', 'qks.js');
const qks = (...args: string[]) => spawnSync(process.execPath, [BIN, ...args], { encoding: 'utf8', timeout: 60_000 });

/** Exit 2 and exactly this one line on stderr, nothing on stdout. */
function refused(args: string[], line: string) {
  const run = qks(...args);
  assert.equal(run.stderr, `${line}\n`, `qks ${args.join(' ')}`);
  assert.equal(run.status, 2, `qks ${args.join(' ')}`);
  assert.equal(run.stdout, '');
}

/**
 * Mistakes a user makes with files and deployments, outside `qks kme` (test/cli/kme-errors.test.ts):
 * each is one line that names the flag or key that gave the file, and the fix, with exit code 2.
 */
describe('files and deployments named wrongly', () => {
  const dir = mkdtempSync(join(tmpdir(), 'qks-user-errors-'));
  const site = join(dir, 'site');
  const absent = join(dir, 'absent.pem');
  let manifest: Manifest;
  const manifestFile = join(site, 'manifest.json');
  before(() => {
    const init = qks('init', '--dir', site, '--ports', 'auto', '--source', 'simulated');
    assert.equal(init.status, 0, init.stderr);
    manifest = JSON.parse(readFileSync(manifestFile, 'utf8')) as Manifest;
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  it('a deployment directory that cannot be made', () => {
    refused(['init', '--dir', '/proc/qks-nope/site'], 'qks init: --dir: cannot create /proc/qks-nope (no such file)');
  });

  it("an SAE's files: the flag, or the manifest's entry, that names a file that is not there", () => {
    const { url } = manifest.kmes[0]!;
    const sae = manifest.saes[0]!;
    const given = ['--sae', sae.id, '--kme', url, '--slave', 'sae-b1'];
    refused(
      ['sae', 'status', ...given, '--ca', absent, '--cert', sae.cert, '--key', sae.key],
      `qks sae status: --ca ${absent}: no such file`,
    );
    refused(
      ['sae', 'status', ...given, '--ca', manifest.ca, '--cert', sae.cert, '--key', dir],
      `qks sae status: --key ${dir}: a directory, not a file`,
    );
    const moved = join(dir, 'moved.json');
    writeFileSync(moved, JSON.stringify({ ...manifest, saes: [{ ...sae, cert: absent }] }));
    refused(
      ['sae', 'get-key', '--manifest', moved, '--sae', sae.id, '--slave', 'sae-b1'],
      `qks sae get-key: --manifest ${moved}: ${sae.id}'s certificate ${absent}: no such file`,
    );
    refused(
      ['tunnel', '--manifest', manifestFile, '--sae', sae.id, '--crl', absent, '--role', 'client', '--peer', 'sae-b1'],
      `qks tunnel: --crl ${absent}: no such file`,
    );
  });

  it("qks ipsec: the configuration key that names an SAE's missing file", () => {
    const sae = manifest.saes[0]!;
    const agent = join(dir, 'agent.json');
    writeFileSync(
      agent,
      JSON.stringify({
        sae: { id: sae.id, kme: manifest.kmes[0]!.url, ca: absent, cert: sae.cert, key: sae.key },
        peer: 'sae-b1',
        role: 'initiator',
        agree: { host: '127.0.0.1', port: 7001 },
        daemon: { type: 'strongswan', vici: 'unix:///run/charon.vici' },
        connection: {
          name: 'qkd',
          local_addr: '192.0.2.1',
          remote_addr: '192.0.2.2',
          local_id: 'a.example',
          remote_id: 'b.example',
          ike_secret_file: 'ike.secret',
          local_ts: '10.1.0.0/16',
          remote_ts: '10.2.0.0/16',
        },
      }),
    );
    refused(['ipsec', '--config', agent], `qks ipsec: ${agent}: sae.ca ${absent}: no such file`);
  });

  it("an operator's files, and --cert/--key beside --manifest", () => {
    const op = manifest.operator!;
    const urls = manifest.kmes.map((k) => k.url).join(',');
    refused(
      ['status', '--once', '--kme', urls, '--ca', manifest.ca, '--cert', absent, '--key', op.key],
      `qks status: --cert ${absent}: no such file`,
    );
    refused(
      ['dashboard', '--manifest', manifestFile, '--cert', op.cert, '--key', absent],
      `qks dashboard: --key ${absent}: no such file`,
    );
    refused(
      ['status', '--once', '--manifest', manifestFile, '--cert', op.cert],
      'qks status: --cert needs --key (qks status --help)',
    );
    refused(
      ['status', '--once', '--manifest', manifestFile, '--kme', urls],
      'qks status: give --manifest or --kme and --ca, not both (qks status --help)',
    );
    const noOperator = join(dir, 'no-operator.json');
    writeFileSync(noOperator, JSON.stringify({ ...manifest, operator: undefined }));
    refused(
      ['status', '--once', '--manifest', noOperator],
      `qks status: ${noOperator} names no operator certificate: give --cert and --key, or --issuer (qks status --help)`,
    );
    const lostOperator = join(dir, 'lost-operator.json');
    writeFileSync(lostOperator, JSON.stringify({ ...manifest, operator: { ...op, key: absent } }));
    refused(
      ['status', '--once', '--manifest', lostOperator],
      `qks status: --manifest ${lostOperator}: ${op.id}'s key ${absent}: no such file`,
    );
  });

  it('qks pki on a directory without a deployment, and revoking what is not there', () => {
    const empty = join(dir, 'empty');
    mkdirSync(empty);
    for (const sub of ['list', 'renew-crl']) {
      refused(
        ['pki', sub, '--dir', empty],
        `qks pki ${sub}: --dir ${empty} holds no deployment (no ${join(empty, 'pki', 'sae-ca.pem')}); ` +
          'make one with qks init --dir DIR, or its CAs with qks pki create-ca --dir DIR',
      );
    }
    refused(
      ['pki', 'revoke', '--dir', site, '--sae', 'sae-zz'],
      `qks pki revoke: SAE sae-zz has no valid certificate in ${site}; qks pki list --dir ${site} shows them`,
    );
    const revoked = qks('pki', 'revoke', '--dir', site, '--sae', 'sae-b2');
    assert.equal(revoked.status, 0, revoked.stderr);
    const { serial, revoked_at } = (JSON.parse(revoked.stdout) as Array<{ serial: string; revoked_at: string }>)[0]!;
    refused(
      ['pki', 'revoke', '--dir', site, '--serial', serial],
      `qks pki revoke: the certificate with serial ${serial} was revoked at ${revoked_at}`,
    );
    refused(
      ['pki', 'revoke', '--dir', site, '--sae', 'sae-b2'],
      `qks pki revoke: SAE sae-b2 has no valid certificate in ${site}; qks pki list --dir ${site} shows them`,
    );
  });

  it('qks controller: a configuration missing, not JSON, with an unknown key, or naming a missing file', () => {
    const config = join(site, 'controller.json');
    refused(
      ['controller', '--config', absent],
      `qks controller: cannot read controller configuration ${absent} (no such file)`,
    );
    const broken = join(dir, 'broken.json');
    writeFileSync(broken, '{\n  "kmes": [],\n}\n');
    refused(
      ['controller', '--config', broken],
      `qks controller: ${broken} is not valid JSON: Expected double-quoted property name at line 3, column 1`,
    );
    const original = JSON.parse(readFileSync(config, 'utf8')) as Record<string, unknown>;
    const colour = join(site, 'colour.json');
    writeFileSync(colour, JSON.stringify({ ...original, colour: 'blue' }));
    refused(
      ['controller', '--config', colour],
      `qks controller: invalid controller configuration ${colour}: unknown key "colour" at the top level; ` +
        'allowed: kmes, ca, cert, key, api, pcep, poll_interval_ms, saes, state_dir',
    );
    const noCert = join(site, 'no-cert.json');
    writeFileSync(noCert, JSON.stringify({ ...original, cert: absent }));
    refused(
      ['controller', '--config', noCert],
      `qks controller: ${noCert}: cert: cannot read ${absent} (no such file)`,
    );
  });
});
