import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { createSecureContext } from 'node:tls';
import { X509Certificate } from 'node:crypto';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import type { KmeConfig } from '../../src/kme/config.js';

const BIN = join(process.cwd(), 'bin', 'qks.js');
const qks = (...args: string[]) => spawnSync(process.execPath, [BIN, ...args], { encoding: 'utf8', timeout: 60_000 });

describe('qks init and qks kme', () => {
  const dir = mkdtempSync(join(tmpdir(), 'qks-cli-test-'));
  after(() => rmSync(dir, { recursive: true, force: true }));

  it('init creates CAs, certificates, master keys (0600) and one config per KME', () => {
    const site = join(dir, 'site');
    const run = qks('init', '--dir', site, '--kmes', 'kme-x,kme-y,kme-z', '--saes-per-kme', '3');
    assert.equal(run.status, 0, run.stderr);
    for (const kme of ['kme-x', 'kme-y', 'kme-z']) {
      assert.match(run.stdout, new RegExp(`qks kme --config .*${kme}\\.json`));
      const config = JSON.parse(readFileSync(join(site, `${kme}.json`), 'utf8')) as KmeConfig;
      assert.equal(config.kme_id, kme);
      assert.equal(config.saes.length, 9);
      assert.equal(statSync(join(config.data_dir, 'master.key')).mode & 0o777, 0o600);
      assert.equal(statSync(join(config.data_dir, 'master.key')).size, 32);
      assert.equal(statSync(config.sae_api.key).mode & 0o777, 0o600);
      assert.equal(statSync(config.kme_api.key).mode & 0o777, 0o600);
    }
    // Every PEM file ends with a newline, so `cat cert key` gives a bundle other TLS stacks read.
    const pems = (readdirSync(site, { recursive: true }) as string[])
      .map((f) => join(site, f))
      .filter((f) => statSync(f).isFile() && readFileSync(f).subarray(0, 10).toString() === '-----BEGIN');
    assert.ok(pems.length >= 3 + 2 * 3 + 9, `PEM files: ${pems.length}`);
    for (const f of pems) assert.ok(readFileSync(f, 'utf8').endsWith('-----\n'), `${f} ends with a newline`);
    const x = JSON.parse(readFileSync(join(site, 'kme-x.json'), 'utf8')) as KmeConfig;
    const bundle = readFileSync(x.sae_api.cert, 'utf8') + readFileSync(x.sae_api.key, 'utf8');
    assert.match(bundle, /-----END CERTIFICATE-----\n-----BEGIN PRIVATE KEY-----\n/);
    createSecureContext({ cert: bundle, key: bundle });
    const middle = JSON.parse(readFileSync(join(site, 'kme-y.json'), 'utf8')) as KmeConfig;
    assert.deepEqual(middle.links.map((l) => l.endpoints).sort(), [
      ['kme-x', 'kme-y'],
      ['kme-y', 'kme-z'],
    ]);
    // A channel certificate issued again for the address or name the peers dial.
    const san = (host: string) => {
      const issued = qks('pki', 'issue', '--dir', site, '--kme', 'kme-y', '--host', host);
      assert.equal(issued.status, 0, issued.stderr);
      const { cert } = JSON.parse(issued.stdout) as { cert: string };
      return new X509Certificate(readFileSync(cert)).subjectAltName ?? '';
    };
    assert.match(san('kme-y.example.net'), /DNS:kme-y\.example\.net/);
    assert.match(san('10.1.2.3'), /IP Address:10\.1\.2\.3/);
    const again = qks('init', '--dir', site, '--kmes', 'kme-x,kme-y,kme-z');
    assert.notEqual(again.status, 0);
    assert.match(again.stderr, /already holds a QKS deployment/);
  });

  it('kme refuses a missing or invalid configuration with a clear message', () => {
    const missing = qks('kme', '--config', join(dir, 'nope.json'));
    assert.equal(missing.status, 2);
    assert.match(missing.stderr, /cannot read configuration/);

    const bad = join(dir, 'bad.json');
    writeFileSync(bad, JSON.stringify({ kme_id: 'kme-a', data_dir: '.', colour: 'blue' }));
    const invalid = qks('kme', '--config', bad);
    assert.equal(invalid.status, 2);
    assert.match(invalid.stderr, /invalid configuration/);
    assert.match(invalid.stderr, /sae_api/);
  });
});
