import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import fc from 'fast-check';
import {
  connectionOf,
  isOperatorDefined,
  parseIpsecConfig,
  type AgentConnection,
  type IpsecAgentConfig,
} from '../../src/integrations/ipsec/agent-config.js';
import { ViciClient } from '../../src/integrations/ipsec/vici/client.js';
import { decodeMessage, encodeMessage, ViciEncodingError } from '../../src/integrations/ipsec/vici/message.js';

describe('VICI messages', () => {
  it('encodes sections, lists and values as the VICI README lays them out', () => {
    const bytes = encodeMessage({ a: 'b', s: { l: ['x', 'yz'] } });
    // KEY_VALUE "a" = "b"; SECTION_START "s"; LIST_START "l"; LIST_ITEM "x"; LIST_ITEM "yz"; LIST_END; SECTION_END
    const expected = Buffer.from([
      3, 1, 0x61, 0, 1, 0x62, 1, 1, 0x73, 4, 1, 0x6c, 5, 0, 1, 0x78, 5, 0, 2, 0x79, 0x7a, 6, 2,
    ]);
    assert.deepEqual(bytes, expected);
  });

  it('decodes what it encodes (numbers and booleans as charon expects them)', () => {
    assert.deepEqual(decodeMessage(encodeMessage({ n: 2, yes: true, no: false, raw: Buffer.from('hi') })), {
      n: '2',
      yes: 'yes',
      no: 'no',
      raw: 'hi',
    });
    const name = fc.stringMatching(/^[a-z_-]{1,12}$/);
    const section = fc.dictionary(name, fc.string({ maxLength: 10 }), { maxKeys: 3, noNullPrototype: true });
    const value = fc.oneof(
      fc.string({ maxLength: 40 }),
      fc.array(fc.string({ maxLength: 10 }), { maxLength: 4 }),
      section,
    );
    fc.assert(
      fc.property(fc.dictionary(name, value, { maxKeys: 6, noNullPrototype: true }), (msg) =>
        assert.deepEqual(decodeMessage(encodeMessage(msg)), msg),
      ),
    );
  });

  it('keeps a `__proto__` name from the wire as a plain entry', () => {
    const wire = Buffer.concat([Buffer.from([3, 9]), Buffer.from('__proto__'), Buffer.from([0, 1, 0x78])]);
    const m = decodeMessage(wire);
    assert.equal(Object.getPrototypeOf(m), Object.prototype);
    assert.equal(Object.getOwnPropertyDescriptor(m, '__proto__')?.value, 'x');
  });

  it('refuses truncated or malformed messages, and values too long to encode', () => {
    const good = encodeMessage({ s: { k: 'value' } });
    for (let cut = 1; cut < good.length; cut++) {
      assert.throws(() => decodeMessage(good.subarray(0, cut)), ViciEncodingError, `cut at ${cut}`);
    }
    assert.throws(() => decodeMessage(Buffer.from([9])), /unknown VICI element type 9/);
    assert.throws(() => decodeMessage(Buffer.from([2])), /section end without start/);
    assert.throws(() => encodeMessage({ k: Buffer.alloc(70_000) }), /longer than 65535/);
    assert.throws(() => encodeMessage({ ['x'.repeat(256)]: 'v' }), /1–255 bytes/);
  });

  it('says clearly when there is no daemon behind the socket', async () => {
    await assert.rejects(
      ViciClient.connect('unix:///nonexistent/charon.vici'),
      /VICI socket \/nonexistent\/charon.vici: no such socket \(is charon running with the vici plugin\?\)/,
    );
  });
});

/** The agent-defined connection of a parsed configuration. */
function own(cfg: IpsecAgentConfig): AgentConnection {
  assert.ok(!isOperatorDefined(cfg.connection));
  return cfg.connection;
}

describe('qks ipsec configuration', () => {
  const dir = mkdtempSync(join(tmpdir(), 'qks-ipsec-config-'));
  after(() => rmSync(dir, { recursive: true, force: true }));
  writeFileSync(join(dir, 'ike.secret'), 'a-long-enough-ike-secret\n', { mode: 0o600 });
  const valid = {
    sae: { id: 'sae-a1', manifest: 'manifest.json' } as Record<string, string>,
    peer: 'sae-b1',
    role: 'initiator',
    agree: { host: '127.0.0.1', port: 7001 },
    daemon: { type: 'strongswan', vici: 'unix:///run/charon.vici' } as Record<string, string>,
    connection: {
      name: 'qkd',
      local_addr: '192.0.2.1',
      remote_addr: '192.0.2.2',
      local_id: 'a.example',
      remote_id: 'b.example',
      ike_secret_file: 'ike.secret',
      local_ts: '10.1.0.0/16',
      remote_ts: '10.2.0.0/16',
    } as Record<string, string>,
  };

  it('fills defaults (PPK required, hourly rotation) and resolves paths against the file', () => {
    const cfg = parseIpsecConfig(valid, dir);
    assert.equal(own(cfg).ppk, 'required');
    assert.equal(cfg.rotation.every_seconds, 3600);
    assert.equal(cfg.sae.manifest, join(dir, 'manifest.json'));
    const conn = connectionOf(own(cfg));
    assert.equal(conn.ppkRequired, true);
    assert.equal(conn.ikeSecret, 'a-long-enough-ike-secret');
  });

  it('refuses mistakes with messages that name them', () => {
    const bad = { ...structuredClone(valid), colour: 'blue' };
    bad.daemon['vici'] = '/run/charon.vici';
    bad.connection['ppk'] = 'maybe';
    assert.throws(
      () => parseIpsecConfig(bad, dir, 'agent.json'),
      (err: Error) => {
        assert.equal(
          err.message,
          [
            'invalid IPsec agent configuration agent.json:',
            '  unknown key "colour" at the top level; allowed: sae, peer, role, agree, rotation, daemon, connection',
            '  daemon.vici must be text matching ^unix:// (not "/run/charon.vici")',
            '  connection.ppk must be one of required, optional (not "maybe")',
          ].join('\n'),
        );
        return true;
      },
    );
    const noType = { ...structuredClone(valid), daemon: { type: 'racoon' } };
    assert.throws(
      () => parseIpsecConfig(noType, dir, 'agent.json'),
      (err: Error) =>
        err.message ===
        'invalid IPsec agent configuration agent.json: daemon.type must be one of strongswan, libreswan (not "racoon")',
    );
    const missing = structuredClone(valid);
    missing.connection['ike_secret_file'] = 'absent.secret';
    assert.throws(
      () => connectionOf(own(parseIpsecConfig(missing, dir))),
      (err: Error) =>
        err.message === `connection.ike_secret_file: cannot read ${join(dir, 'absent.secret')} (no such file)`,
    );
    const short = structuredClone(valid);
    writeFileSync(join(dir, 'short.secret'), 'short\n');
    short.connection['ike_secret_file'] = 'short.secret';
    assert.throws(() => connectionOf(own(parseIpsecConfig(short, dir))), /needs 16 characters or more/);
  });

  it('takes an operator-defined connection by name alone, with strongSwan only', () => {
    const operator = { ...structuredClone(valid), connection: { defined_by: 'operator', name: 'corp-net' } };
    assert.deepEqual(parseIpsecConfig(operator, dir).connection, { defined_by: 'operator', name: 'corp-net' });
    const extra = {
      ...structuredClone(operator),
      connection: { defined_by: 'operator', name: 'corp', local_ts: '10.0.0.0/8' },
    };
    assert.throws(
      () => parseIpsecConfig(extra, dir, 'agent.json'),
      (err: Error) =>
        err.message ===
        'invalid IPsec agent configuration agent.json: unknown key "local_ts" in connection; allowed: defined_by, name',
    );
    const libreswan = {
      ...structuredClone(operator),
      daemon: { type: 'libreswan', ctl_socket: 'pluto.ctl', secrets_file: 'qks.secrets', dir: 'agent' },
    };
    assert.throws(
      () => parseIpsecConfig(libreswan, dir, 'agent.json'),
      /connection.defined_by: "operator" needs daemon.type "strongswan"/,
    );
    const agentMissing = { ...structuredClone(valid), connection: { name: 'qkd' } };
    assert.throws(() => parseIpsecConfig(agentMissing, dir, 'agent.json'), /missing key "local_addr" in connection/);
  });

  it('qks ipsec exits with a clear message when the daemon is absent, after warning of an optional PPK', () => {
    const file = join(dir, 'agent.json');
    const manifest = join(dir, 'manifest.json');
    for (const f of ['ca.pem', 'sae.pem', 'sae.key']) writeFileSync(join(dir, f), 'not read before the daemon\n');
    const sae = { id: 'sae-a1', kme: 'kme-a', cert: join(dir, 'sae.pem'), key: join(dir, 'sae.key') };
    writeFileSync(
      manifest,
      JSON.stringify({ ca: join(dir, 'ca.pem'), kmes: [{ id: 'kme-a', url: 'https://127.0.0.1:1' }], saes: [sae] }),
    );
    const cfg = structuredClone(valid);
    cfg.sae = { id: 'sae-a1', manifest };
    cfg.connection['ppk'] = 'optional';
    cfg.daemon['vici'] = `unix://${join(dir, 'no-charon.vici')}`;
    writeFileSync(file, JSON.stringify(cfg));
    const run = spawnSync(process.execPath, [join(process.cwd(), 'bin', 'qks.js'), 'ipsec', '--config', file], {
      encoding: 'utf8',
      timeout: 20_000,
    });
    assert.equal(run.status, 1, run.stderr);
    assert.match(run.stdout, /"event":"warning".*not quantum-safe/);
    assert.match(run.stderr, /no-charon\.vici: no such socket \(is charon running with the vici plugin\?\)/);
  });
});
