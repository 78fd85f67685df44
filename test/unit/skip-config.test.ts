import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { ConfigError, parseConfig } from '../../src/kme/config.js';
import { readPskFile } from '../../src/kme/skip-listener.js';

describe('SKIP configuration', () => {
  const base = (skip: unknown) => ({
    kme_id: 'kme-a',
    data_dir: 'data',
    sae_api: { host: '127.0.0.1', port: 8443, cert: 'c.pem', key: 'k.pem', client_ca: 'ca.pem' },
    kme_api: { host: '127.0.0.1', port: 9443, cert: 'c.pem', key: 'k.pem', ca: 'kca.pem' },
    saes: [
      { id: 'sae-a1', kme: 'kme-a' },
      { id: 'sae-b1', kme: 'kme-b' },
    ],
    links: [],
    skip,
  });
  const message = (skip: unknown) => {
    try {
      parseConfig(base(skip), '/etc/qks', '/etc/qks/kme-a.json');
    } catch (err) {
      assert.ok(err instanceof ConfigError);
      return err.message;
    }
    assert.fail('accepted');
  };
  const client = (identity: string, sae: string) => ({ identity, sae, psk_file: `${identity}.psk` });

  it('resolves PSK files against the file’s folder', () => {
    const cfg = parseConfig(base({ host: '::', port: 4443, clients: [client('r1', 'sae-a1')] }), '/etc/qks');
    assert.equal(cfg.skip?.clients[0]?.psk_file, '/etc/qks/r1.psk');
  });

  it('refuses a client acting as another KME’s SAE, a repeated identity, no clients', () => {
    assert.equal(
      message({ host: '::', port: 4443, clients: [client('r1', 'sae-b1')] }),
      'invalid configuration /etc/qks/kme-a.json: skip.clients: SAE sae-b1 is not served by this KME (kme-a)',
    );
    assert.equal(
      message({ host: '::', port: 4443, clients: [client('r1', 'sae-a1'), client('r1', 'sae-a1')] }),
      'invalid configuration /etc/qks/kme-a.json: skip.clients: a PSK identity appears twice',
    );
    assert.match(message({ host: '::', port: 4443, clients: [] }), /skip\.clients/);
  });

  it('reads a PSK of at least 16 bytes in hexadecimal, and nothing else', () => {
    const dir = mkdtempSync(join(tmpdir(), 'qks-skip-'));
    try {
      const file = join(dir, 'r.psk');
      writeFileSync(file, `${'ab'.repeat(32)}\n`);
      assert.equal(readPskFile(file).length, 32);
      for (const bad of ['ab'.repeat(15), 'not hex at all, not hex at all!!', 'abc'.repeat(11)]) {
        writeFileSync(file, bad);
        assert.throws(() => readPskFile(file), /at least 16 bytes in hexadecimal/);
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
