import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { describe, it } from 'node:test';
import { entityFromAltNames } from '../../src/auth/tls-identity.js';
import { ConfigError, parseConfig } from '../../src/kme/config.js';
import { Barrier } from '../../src/stores/barrier.js';

describe('Barrier', () => {
  const plain = randomBytes(32);
  it('seals and opens; the sealed bytes do not contain the plain ones', () => {
    const b = new Barrier(randomBytes(32));
    const sealed = b.sealBlock(plain, 'l', 7);
    assert.equal(sealed.length, Barrier.sealedLength(32));
    assert.equal(sealed.indexOf(plain.subarray(0, 8)), -1);
    assert.ok(b.openBlock(sealed, 'l', 7).equals(plain));
    assert.ok(!b.sealBlock(plain, 'l', 7).equals(sealed), 'a fresh nonce each time');
  });
  it('refuses another place, a changed byte, or another master key, saying nothing more', () => {
    const b = new Barrier(randomBytes(32));
    const sealed = b.sealBlock(plain, 'l', 7);
    const tampered = Buffer.from(sealed);
    tampered[20]! ^= 1;
    for (const attempt of [
      () => b.openBlock(sealed, 'l', 9),
      () => b.openBlock(sealed, 'm', 7),
      () => b.openBlock(tampered, 'l', 7),
      () => new Barrier(randomBytes(32)).openBlock(sealed, 'l', 7),
    ]) {
      assert.throws(attempt, (err: Error) => err.message === 'key data access error');
    }
    assert.throws(() => new Barrier(randomBytes(16)), /32 bytes/);
  });
});

describe('identity from certificates', () => {
  it('needs exactly one URI of the expected kind', () => {
    assert.equal(entityFromAltNames('URI:urn:qks:sae:sae-a1, DNS:localhost', 'sae'), 'sae-a1');
    assert.equal(entityFromAltNames('URI:urn:qks:kme:kme-a', 'sae'), null);
    assert.equal(entityFromAltNames('URI:urn:qks:sae:a, URI:urn:qks:sae:b', 'sae'), null);
    assert.equal(entityFromAltNames(undefined, 'kme'), null);
  });
});

describe('KME configuration', () => {
  const base = () => ({
    kme_id: 'kme-a',
    data_dir: 'data',
    sae_api: { host: '127.0.0.1', port: 8443, cert: 'c.pem', key: 'k.pem', client_ca: 'ca.pem' },
    kme_api: { host: '127.0.0.1', port: 9443, cert: 'c.pem', key: 'k.pem', ca: 'kca.pem' },
    peers: [{ kme_id: 'kme-b', url: 'https://127.0.0.1:9444' }],
    saes: [
      { id: 'sae-a1', kme: 'kme-a' },
      { id: 'sae-b1', kme: 'kme-b' },
    ],
    links: [
      {
        id: 'l',
        endpoints: ['kme-a', 'kme-b'],
        source: { type: 'simulated', seed_file: 's', rate_bps: 1000, epoch_ms: 0 },
      },
    ],
  });
  it('fills defaults and resolves paths against the file’s folder', () => {
    const cfg = parseConfig(base(), '/etc/qks');
    assert.equal(cfg.data_dir, '/etc/qks/data');
    assert.equal(cfg.sae_api.client_ca, '/etc/qks/ca.pem');
    assert.equal(cfg.links[0]!.source.seed_file, '/etc/qks/s');
    assert.equal(cfg.store, 'sqlite');
    assert.equal(cfg.store_synchronous, 'FULL', 'answered commits survive a power loss unless told otherwise');
    const pg = parseConfig({ ...base(), store: 'postgres', postgres: { ssl: { ca: 'pg-ca.pem' } } }, '/etc/qks');
    assert.deepEqual(pg.postgres, { ssl: { ca: '/etc/qks/pg-ca.pem' } }, 'no url: the libpq environment says');
    assert.equal(cfg.limits.key_size, 256);
    assert.equal(cfg.links[0]!.block_bits, 256);
    assert.deepEqual(cfg.sae_api.auth, { mode: 'certificate' });
  });
  it('refuses mistakes with messages that name them', () => {
    const bad = (change: (c: Record<string, unknown>) => void, message: RegExp) => {
      const c = base() as unknown as Record<string, unknown>;
      change(c);
      assert.throws(
        () => parseConfig(c, '/'),
        (err: Error) => err instanceof ConfigError && message.test(err.message),
      );
    };
    bad((c) => delete c['sae_api'], /sae_api/);
    bad((c) => (c['colour'] = 'blue'), /unknown key "colour" at the top level/);
    bad((c) => ((c['sae_api'] as Record<string, unknown>)['port'] = 70000), /port/);
    bad(
      (c) => ((c['links'] as Array<Record<string, unknown>>)[0]!['endpoints'] = ['kme-x', 'kme-b']),
      /not an endpoint/,
    );
    bad((c) => (c['limits'] = { key_size: 100 }), /key_size/);
    bad((c) => (c['store_synchronous'] = 'OFF'), /store_synchronous/);
    bad((c) => (c['peers'] = []), /no peers entry/);
    bad((c) => ((c['sae_api'] as Record<string, unknown>)['auth'] = { mode: 'token' }), /needs an oidc section/);
    bad((c) => (c['access'] = { admins: ['nobody'] }), /unknown SAE nobody/);
    const oidc = (o: Record<string, unknown>) => (c: Record<string, unknown>) =>
      ((c['sae_api'] as Record<string, unknown>)['auth'] = { mode: 'token', oidc: { audience: 'kme', ...o } });
    bad(oidc({ issuer: 'http://127.0.0.1:8080' }), /oidc.issuer: http:\/\/127.0.0.1:8080 must be https:\/\//);
    bad(
      oidc({ issuer: 'http://idp.example', allow_loopback_http: true }),
      /must be https:\/\/ \(or http:\/\/ on loopback\)/,
    );
    bad(
      (c) =>
        ((c['sae_api'] as Record<string, unknown>)['connections'] = {
          headers_timeout_ms: 5000,
          request_timeout_ms: 1000,
        }),
      /headers_timeout_ms must not exceed request_timeout_ms/,
    );
    bad((c) => ((c['kme_api'] as Record<string, unknown>)['connections'] = { max_connections: 0 }), /max_connections/);
  });
  it('names the file, the path and the key of each problem, one line each', () => {
    const message = (change: (c: Record<string, unknown>) => void) => {
      const c = base() as unknown as Record<string, unknown>;
      change(c);
      try {
        parseConfig(c, '/', '/etc/qks/kme-a.json');
      } catch (err) {
        assert.ok(err instanceof ConfigError);
        return err.message;
      }
      assert.fail('accepted');
    };
    const sae = (c: Record<string, unknown>) => c['sae_api'] as Record<string, unknown>;
    const source = (c: Record<string, unknown>) =>
      (c['links'] as Array<Record<string, Record<string, unknown>>>)[0]!['source']!;
    const top =
      'kme_id, node_address, data_dir, store, store_synchronous, postgres, master_key, sae_api, kme_api, skip, access, peers, saes, network, links, limits, key_ttl_seconds, crl, replica, log_level';
    assert.equal(
      message((c) => (c['colour'] = 'blue')),
      `invalid configuration /etc/qks/kme-a.json: unknown key "colour" at the top level; allowed: ${top}`,
    );
    assert.equal(
      message((c) => (sae(c)['port'] = '8443')),
      'invalid configuration /etc/qks/kme-a.json: sae_api.port must be an integer',
    );
    assert.equal(
      message((c) => {
        delete sae(c)['cert'];
        (c['kme_api'] as Record<string, unknown>)['colour'] = 'blue';
      }),
      [
        'invalid configuration /etc/qks/kme-a.json:',
        '  missing key "cert" in sae_api',
        '  unknown key "colour" in kme_api; allowed: host, port, cert, key, ca, crl, connections',
      ].join('\n'),
    );
    assert.equal(
      message((c) => (source(c)['type'] = 'magic')),
      'invalid configuration /etc/qks/kme-a.json: links[0].source.type must be one of simulated, qkd (not "magic")',
    );
    assert.equal(
      message((c) => (source(c)['extra'] = 1)),
      'invalid configuration /etc/qks/kme-a.json: unknown key "extra" in links[0].source; allowed: type, seed_file, rate_bps, epoch_ms',
    );
    assert.equal(
      message((c) => (c['access'] = { rules: [{ sae: 'sae-a1', slaves: 'all' }] })),
      'invalid configuration /etc/qks/kme-a.json: access.rules[0].slaves must be "*" or a list of SAE IDs',
    );
    assert.equal(
      message((c) => (c['kme_id'] = 'kme a')),
      'invalid configuration /etc/qks/kme-a.json: kme_id must be an ID: 1 to 64 letters, digits and . _ ~ -, beginning with a letter or digit (not "kme a")',
    );
    assert.equal(
      message((c) => (c['store'] = 'mysql')),
      'invalid configuration /etc/qks/kme-a.json: store must be one of sqlite, memory, postgres (not "mysql")',
    );
    const pgStore =
      (postgres: unknown, store = 'postgres') =>
      (c: Record<string, unknown>) => {
        c['store'] = store;
        c['postgres'] = postgres;
      };
    assert.equal(
      message(pgStore({ url: 'mysql://db/qks' })),
      'invalid configuration /etc/qks/kme-a.json: postgres.url must be a connection string postgres://user@host:port/database',
    );
    assert.equal(
      message(pgStore({ pool_size: 0 })),
      'invalid configuration /etc/qks/kme-a.json: postgres.pool_size must be >= 1',
    );
    assert.equal(
      message(pgStore({ ssl: { ca: 'ca.pem', cert: 'client.pem' } })),
      'invalid configuration /etc/qks/kme-a.json: postgres.ssl: cert and key go together',
    );
    assert.equal(
      message(pgStore({ url: 'postgres://db/qks?sslmode=require', ssl: { ca: 'ca.pem' } })),
      'invalid configuration /etc/qks/kme-a.json: postgres.url: no ssl parameters in the URL when postgres.ssl is given',
    );
    assert.equal(
      message(pgStore({ url: 'postgres://db/qks' }, 'sqlite')),
      'invalid configuration /etc/qks/kme-a.json: postgres: used only with store "postgres" (store is "sqlite")',
    );
    assert.equal(
      message(pgStore({ statement_timeout: 5 })),
      'invalid configuration /etc/qks/kme-a.json: unknown key "statement_timeout" in postgres; allowed: url, ssl, pool_size, statement_timeout_ms',
    );
    assert.equal(
      message((c) => (c['peers'] = [])),
      'invalid configuration /etc/qks/kme-a.json: links.l: no peers entry for kme-b',
    );
  });
  it('takes an https issuer, and http on loopback only where allowed (tests)', () => {
    for (const o of [
      { issuer: 'https://idp.example' },
      { issuer: 'http://127.0.0.1:8080', allow_loopback_http: true },
    ]) {
      const c = base() as unknown as Record<string, unknown>;
      (c['sae_api'] as Record<string, unknown>)['auth'] = { mode: 'token', oidc: { audience: 'kme', ...o } };
      assert.equal(parseConfig(c, '/').sae_api.auth.oidc?.issuer, o.issuer);
    }
  });
});
