import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { pino } from 'pino';
import { ConfigError, loadConfig } from '../../src/kme/config.js';
import { startKme } from '../../src/kme/kme.js';
import { fetchKeys, keysOf } from '../helpers/key-traffic.js';
import { postgresSkip, startPostgres, type PgServer } from '../helpers/postgres.js';
import { assertSameKeys, shown } from '../helpers/redact.js';
import { eventually, startSites, type TwoSites } from '../helpers/two-kmes.js';

/** Put in the connection string: the server (trust authentication) ignores it; no log may show it. */
const PASSWORD = 'pw-never-logged-7f3a';

/** Two KMEs over real TLS; kme-a keeps its store in a real PostgreSQL, kme-b in SQLite. */
describe('a KME on the PostgreSQL store', postgresSkip(), () => {
  let server: PgServer;
  let sites: TwoSites;
  let db: string;

  before(async () => {
    server = await startPostgres();
    const url = new URL(await server.createDatabase());
    db = url.pathname.slice(1);
    url.password = PASSWORD;
    sites = await startSites({
      rateBps: 1_000_000,
      configure: (config) => {
        if (config.kme_id !== 'kme-a') return;
        config.store = 'postgres';
        config.postgres = { url: url.toString(), pool_size: 4, statement_timeout_ms: 5000 };
      },
    });
    await eventually(
      async () => {
        const s = await sites.sae('sae-a1').get('/api/v1/keys/sae-b1/status');
        return (s.body as { stored_key_count: number }).stored_key_count >= 10;
      },
      15_000,
      'key material',
    );
  });
  after(async () => {
    await sites?.stop();
    await server?.stop();
  });

  it('serves the ETSI key flow both ways, each key delivered once', async () => {
    // kme-a (PostgreSQL) cuts the keys for its master; kme-b's slave fetches them.
    const res = await sites.sae('sae-a1').post('/api/v1/keys/sae-b1/enc_keys', { number: 3, size: 256 });
    assert.equal(res.status, 200, shown(res));
    const keys = keysOf(res);
    const ids = keys.map((k) => k.key_ID);
    const got = await fetchKeys(sites.sae('sae-b1'), 'sae-a1', ids, false);
    assert.ok(got.ok, got.ok ? '' : shown(got.res));
    assertSameKeys(got.keys, keys, 'the slave gets its master’s keys');

    // kme-b cuts; kme-a claims the blocks in PostgreSQL and hands the keys to its slave once.
    const back = await sites.sae('sae-b1').post('/api/v1/keys/sae-a1/enc_keys', { number: 2, size: 256 });
    assert.equal(back.status, 200, shown(back));
    const backKeys = keysOf(back);
    const backIds = backKeys.map((k) => k.key_ID);
    assert.equal(Number((await server.sql(`SELECT count(*) AS n FROM keys`, db))[0]!['n']), 2, 'waiting in PostgreSQL');
    const fetched = await fetchKeys(sites.sae('sae-a1'), 'sae-b1', backIds, false);
    assert.ok(fetched.ok, fetched.ok ? '' : shown(fetched.res));
    assertSameKeys(fetched.keys, backKeys, 'kme-a delivers from PostgreSQL');
    const again = await fetchKeys(sites.sae('sae-a1'), 'sae-b1', backIds, false);
    assert.equal(again.ok ? 200 : again.res.status, 400, 'a second fetch finds nothing');
    assert.equal(Number((await server.sql(`SELECT count(*) AS n FROM keys`, db))[0]!['n']), 0);
    assert.ok(Number((await server.sql(`SELECT count(*) AS n FROM blocks`, db))[0]!['n']) > 0, 'blocks are there');
  });

  it('logs where the database is, never its password', () => {
    const logs = readdirSync(sites.deployment.dir)
      .filter((f) => f.endsWith('.log'))
      .map((f) => readFileSync(join(sites.deployment.dir, f), 'utf8'))
      .join('');
    assert.match(logs, new RegExp(`"postgres":"127\\.0\\.0\\.1:${server.port}/${db}"[^\\n]*PostgreSQL store open`));
    assert.ok(!logs.includes(PASSWORD));
  });

  it('refuses to start, naming the postgres section, when the database cannot be reached', async () => {
    await sites.stopKme('kme-b');
    const { file } = sites.deployment.configs.find((c) => c.kme === 'kme-b')!;
    const config = loadConfig(file);
    config.store = 'postgres';
    config.postgres = { url: `postgres://postgres:${PASSWORD}@127.0.0.1:${server.port}/absent` };
    await assert.rejects(startKme(config, pino({ level: 'silent' })), (err: unknown) => {
      assert.ok(err instanceof ConfigError, String(err));
      assert.equal(
        err.message,
        `${file}: postgres: cannot connect to PostgreSQL at 127.0.0.1:${server.port}/absent: database "absent" does not exist`,
      );
      assert.ok(!err.message.includes(PASSWORD));
      return true;
    });
  });
});
