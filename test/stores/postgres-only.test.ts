import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import pg from 'pg';
import { QksError } from '../../src/domain/errors.js';
import { createCa, issueCertificate } from '../../src/pki/certificates.js';
import { Barrier } from '../../src/stores/barrier.js';
import type { IncomingBlock, KeyRecord } from '../../src/stores/key-store.js';
import { PgSchemaError, PostgresKeyStore, type PostgresOptions } from '../../src/stores/postgres-store.js';
import { postgresSkip, startPostgres, type PgServer } from '../helpers/postgres.js';
import { newKey } from './key-store-conformance.js';

// What only the PostgreSQL store has: connections that die, several processes (replicas) sharing
// one database, lock waits that time out, and a migration many replicas start at once.

const barrier = new Barrier(randomBytes(32));
const LINK = 'l';
/** kme-a owns the even blocks. */
const evenBlocks = (n: number): IncomingBlock[] =>
  Array.from({ length: n }, (_, i) => ({ seq: 2 * i, owner: 'kme-a', sealed: randomBytes(48) }));
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('PostgreSQL store: what only it has', postgresSkip(), () => {
  let server: PgServer;
  before(async () => {
    server = await startPostgres({ settings: { deadlock_timeout: '500ms' } });
  });
  after(() => server?.stop());

  const open = async (url: string, more: Partial<PostgresOptions> = {}) =>
    PostgresKeyStore.open({ url, poolSize: 4, ...more }, barrier);
  const dbName = (url: string) => new URL(url).pathname.slice(1);

  /** Every block number cut into a key at most once, and none of them still in the pool. */
  async function assertNothingCutTwice(url: string) {
    const db = dbName(url);
    const keys = await server.sql<{ seqs: string }>('SELECT seqs FROM keys', db);
    const cut = keys.flatMap((k) => JSON.parse(k.seqs) as number[]);
    assert.equal(new Set(cut).size, cut.length, 'no block is in two keys');
    const left = await server.sql<{ seq: number }>('SELECT seq FROM blocks', db);
    assert.ok(!left.some((b) => cut.includes(Number(b.seq))), 'no cut block is still in the pool');
    return cut.length;
  }

  /** Cuts one key after another with `parallel` calls in flight; returns the keys cut and the errors. */
  async function cutLoop(store: PostgresKeyStore, prefix: string, parallel: number, until: () => boolean) {
    const cut: KeyRecord[] = [];
    const errors: unknown[] = [];
    let n = 0;
    await Promise.all(
      Array.from({ length: parallel }, async () => {
        while (!until()) {
          try {
            const got = await store.takeOwnBlocks(LINK, 'kme-a', [newKey(`${prefix}-${n++}`)]);
            if (!got) return;
            cut.push(...got);
          } catch (err) {
            errors.push(err);
            await sleep(10);
          }
        }
      }),
    );
    return { cut, errors };
  }

  it('survives its connections being terminated mid-use: failed calls change nothing, the next ones work', async () => {
    const url = await server.createDatabase();
    const idleErrors: Error[] = [];
    const store = await open(url, { onIdleError: (e) => idleErrors.push(e) });
    await store.addBlocks(LINK, evenBlocks(400), 799);
    let stop = false;
    const loop = cutLoop(store, 'k', 4, () => stop);
    for (let i = 0; i < 5; i++) {
      await sleep(40);
      await server.sql(
        `SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '${dbName(url)}' AND application_name = 'qks-kme'`,
      );
    }
    await sleep(40);
    stop = true;
    const { cut, errors } = await loop;
    assert.ok(errors.length > 0, 'some calls lost their connection');
    for (const err of errors) {
      assert.ok(err instanceof QksError && err.code === 'KEY_DATA_ACCESS_ERROR', String(err));
      assert.match(err.message, /^key data access error: the connection to the database was lost \(takeOwnBlocks\)$/);
    }
    // The next calls work, on new connections.
    const next = await store.takeOwnBlocks(LINK, 'kme-a', [newKey('after')]);
    assert.ok(next);
    const inDb = await assertNothingCutTwice(url);
    // A call that failed either committed whole or not at all: every answered key is there.
    assert.ok(inDb >= cut.length + 1);
    assert.equal(inDb + (await store.countBlocks(LINK, 'kme-a')), 400, 'no block lost half-way');
    await store.close();
  });

  it('works again after a server restart and after a backend is killed with SIGKILL', async () => {
    const url = await server.createDatabase();
    const store = await open(url);
    await store.addBlocks(LINK, evenBlocks(50), 99);
    assert.ok(await store.takeOwnBlocks(LINK, 'kme-a', [newKey('before')]));
    await server.restart();
    assert.ok(await store.takeOwnBlocks(LINK, 'kme-a', [newKey('after-restart')]), 'the first call after works');

    // SIGKILL of one backend makes the server restart every backend (crash recovery).
    const [backend] = await server.sql<{ pid: number }>(
      `SELECT pid FROM pg_stat_activity WHERE datname = '${dbName(url)}' AND application_name = 'qks-kme' LIMIT 1`,
    );
    assert.ok(backend);
    process.kill(backend.pid, 'SIGKILL');
    let ok = false;
    const failures: string[] = [];
    for (let i = 0; i < 100 && !ok; i++) {
      try {
        ok = !!(await store.takeOwnBlocks(LINK, 'kme-a', [newKey(`after-kill-${i}`)]));
      } catch (err) {
        assert.ok(err instanceof QksError, String(err));
        failures.push(err.message);
        await sleep(50);
      }
    }
    assert.ok(ok, `works again after crash recovery (failures: ${failures.join('; ')})`);
    assert.equal(await assertNothingCutTwice(url), 3);
    await store.close();
  });

  it('two stores (two replicas) cutting one share at once from two pools use every block exactly once, with no error', async () => {
    const url = await server.createDatabase();
    const [a, b] = [await open(url), await open(url)];
    await a.addBlocks(LINK, evenBlocks(300), 599);
    const [ra, rb] = await Promise.all([cutLoop(a, 'a', 4, () => false), cutLoop(b, 'b', 4, () => false)]);
    assert.deepEqual([...ra.errors, ...rb.errors], []);
    const seqs = [...ra.cut, ...rb.cut].flatMap((k) => k.blocks.map((x) => x.seq));
    assert.equal(seqs.length, 300, 'every block cut');
    assert.equal(new Set(seqs).size, 300, 'none twice');
    assert.ok(ra.cut.length > 0 && rb.cut.length > 0, 'both replicas cut keys');
    assert.equal(await assertNothingCutTwice(url), 300);
    await Promise.all([a.close(), b.close()]);
  });

  it('keeps to READ COMMITTED on a database whose default is SERIALIZABLE: concurrent cuts all succeed', async () => {
    const url = await server.createDatabase();
    await server.sql(`ALTER DATABASE ${dbName(url)} SET default_transaction_isolation = 'serializable'`);
    const [a, b] = [await open(url), await open(url)];
    await a.addBlocks(LINK, evenBlocks(200), 399);
    const [ra, rb] = await Promise.all([cutLoop(a, 'a', 4, () => false), cutLoop(b, 'b', 4, () => false)]);
    assert.deepEqual([...ra.errors, ...rb.errors], [], 'no failure reaches the caller');
    assert.equal(await assertNothingCutTwice(url), 200);
    await Promise.all([a.close(), b.close()]);
  });

  it('runs a call again after a serialization failure, and gives up after 8 tries changing nothing', async () => {
    const url = await server.createDatabase();
    const store = await open(url);
    await store.addBlocks(LINK, evenBlocks(4), 7);
    // The server fails the next N inserts of a key with SQLSTATE 40001, as a lost race would
    // (a sequence, because its count survives the rollback of the failed transaction).
    const failNext = async (n: number) =>
      server.sql(
        `DROP TRIGGER IF EXISTS lose ON keys; DROP SEQUENCE IF EXISTS losses; CREATE SEQUENCE losses;
         CREATE OR REPLACE FUNCTION lose() RETURNS trigger AS $$ BEGIN
           IF nextval('losses') <= ${n} THEN RAISE EXCEPTION 'lost a race' USING ERRCODE = 'serialization_failure'; END IF;
           RETURN NEW; END $$ LANGUAGE plpgsql;
         CREATE TRIGGER lose BEFORE INSERT ON keys FOR EACH ROW EXECUTE FUNCTION lose();`,
        dbName(url),
      );
    const tries = async () =>
      Number((await server.sql<{ n: string }>('SELECT last_value AS n FROM losses', dbName(url)))[0]!.n);
    await failNext(3);
    const cut = await store.takeOwnBlocks(LINK, 'kme-a', [newKey('after-three')]);
    assert.equal(cut?.length, 1, 'the fourth try went through');
    assert.equal(await tries(), 4);
    await failNext(100);
    await assert.rejects(store.takeOwnBlocks(LINK, 'kme-a', [newKey('never')]), /SQLSTATE 40001/);
    assert.equal(await tries(), 8, 'eight tries in all');
    assert.equal(await store.countBlocks(LINK, 'kme-a'), 3, 'the failed call took no block');
    await store.close();
  });

  it('retries what lost a race: the same key ID cut at once by two replicas, and a deadlock', async () => {
    const url = await server.createDatabase();
    const [a, b] = [await open(url), await open(url)];
    // Two shares, so that only the key ID is contended: one replica gets it, the other null.
    await a.addBlocks(
      LINK,
      [...evenBlocks(40), ...evenBlocks(40).map((x) => ({ ...x, seq: x.seq + 1, owner: 'kme-b' }))],
      79,
    );
    for (let i = 0; i < 20; i++) {
      const [x, y] = await Promise.all([
        a.takeOwnBlocks(LINK, 'kme-a', [newKey(`same-${i}`)]),
        b.takeOwnBlocks(LINK, 'kme-b', [newKey(`same-${i}`)]),
      ]);
      assert.equal([x, y].filter((r) => r !== null).length, 1, `same-${i} cut once`);
    }
    // A deadlock: another session holds key k2 and then asks for k1, while the store holds k1 and
    // waits for k2. The store's transaction is the one aborted (its deadlock check, after 500 ms of
    // waiting, runs long before the other session's); it is run again and delivers both once the other session is gone.
    await a.takeOwnBlocks(LINK, 'kme-a', [
      newKey('k1', { state: 'ready', pendingSlaves: ['s'], peerKme: null }),
      newKey('k2', { state: 'ready', pendingSlaves: ['s'], peerKme: null }),
    ]);
    const other = new pg.Client({ connectionString: url });
    await other.connect();
    const logBefore = server.log().length;
    await other.query("BEGIN; SET LOCAL deadlock_timeout = '5s'; SELECT 1 FROM keys WHERE key_id = 'k2' FOR UPDATE");
    const take = a.takeForSlave('sae-a1', 's', ['k1', 'k2']);
    await sleep(100); // the store holds k1 and waits for k2
    const otherWait = other.query("SELECT 1 FROM keys WHERE key_id = 'k1' FOR UPDATE");
    await otherWait; // granted once the store's transaction was aborted
    await other.query('ROLLBACK');
    const taken = await take;
    assert.ok(taken.ok && taken.keys.length === 2, 'delivered after the retry');
    assert.deepEqual(await b.takeForSlave('sae-a1', 's', ['k1']), { ok: false, reason: 'not_found' }, 'once');
    await other.end();
    // The server's log shows whose transaction it aborted: the store's statement.
    assert.match(
      server.log().slice(logBefore),
      /ERROR: {2}deadlock detected[^]*STATEMENT: {2}SELECT \* FROM keys WHERE key_id = ANY\(\$1\) ORDER BY key_id FOR UPDATE/,
    );
    await Promise.all([a.close(), b.close()]);
  });

  it('fails a call that waits longer than the statement timeout, changing nothing', async () => {
    const url = await server.createDatabase();
    const store = await open(url, { statementTimeoutMs: 300 });
    await store.addBlocks(LINK, evenBlocks(10), 19);
    // Another session holds the share's lock, as a hung replica would.
    const other = new pg.Client({ connectionString: url });
    await other.connect();
    await other.query("SELECT pg_advisory_lock(hashtext('l'), hashtext('kme-a'))");
    const started = Date.now();
    await assert.rejects(store.takeOwnBlocks(LINK, 'kme-a', [newKey('slow')]), (err: unknown) => {
      assert.ok(err instanceof QksError && err.code === 'KEY_DATA_ACCESS_ERROR');
      assert.match(
        err.message,
        /^key data access error: the database exceeded the statement timeout \(takeOwnBlocks\)$/,
      );
      return true;
    });
    assert.ok(Date.now() - started < 3000, 'failed after the timeout, not later');
    assert.equal(await store.countBlocks(LINK, 'kme-a'), 10, 'nothing was cut');
    assert.deepEqual(await store.countKeys(), { reserved: 0, ready: 0 });
    await other.end();
    assert.ok(await store.takeOwnBlocks(LINK, 'kme-a', [newKey('slow')]), 'works once the lock is free');
    await store.close();
  });

  it('migrates a new database once when several replicas start at once, and refuses a newer schema', async () => {
    const url = await server.createDatabase();
    const stores = await Promise.all(Array.from({ length: 6 }, () => open(url, { poolSize: 1 })));
    const rows = await server.sql<{ version: number }>('SELECT version FROM qks_schema', dbName(url));
    assert.deepEqual(
      rows.map((r) => r.version),
      [1],
    );
    await Promise.all(stores.map((s) => s.close()));
    await server.sql('INSERT INTO qks_schema VALUES (99, 0)', dbName(url));
    await assert.rejects(open(url), PgSchemaError);
  });

  it('a key cut by one replica is taken for its slave by the other exactly once', async () => {
    const url = await server.createDatabase();
    const [a, b] = [await open(url), await open(url)];
    await a.addBlocks(LINK, evenBlocks(40), 79);
    const ids = Array.from({ length: 40 }, (_, i) => `r-${i}`);
    for (const id of ids)
      assert.ok(
        await a.takeOwnBlocks(LINK, 'kme-a', [newKey(id, { state: 'ready', pendingSlaves: ['s'], peerKme: null })]),
      );
    // Both replicas asked for every key at once, as a slave retrying through a load balancer would.
    const results = await Promise.all(ids.flatMap((id) => [a, b].map((s) => s.takeForSlave('sae-a1', 's', [id]))));
    assert.equal(results.filter((r) => r.ok).length, 40, 'each key delivered once');
    assert.ok(results.every((r) => r.ok || r.reason === 'not_found'));
    assert.deepEqual(await b.countKeys(), { reserved: 0, ready: 0 });
    await Promise.all([a.close(), b.close()]);
  });

  it('a replica that starts again burns its own reservations, never those of a replica still running', async () => {
    const url = await server.createDatabase();
    const [r1, r2] = [await open(url, { replica: 'r1' }), await open(url, { replica: 'r2' })];
    await r1.addBlocks(LINK, evenBlocks(10), 19);
    assert.ok(await r1.takeOwnBlocks(LINK, 'kme-a', [newKey('of-r1')]));
    assert.ok(await r2.takeOwnBlocks(LINK, 'kme-a', [newKey('of-r2')]));
    await r1.close();
    // r1 comes back: its reservation was never confirmed, and goes; r2's is still in flight.
    const again = await open(url, { replica: 'r1' });
    assert.equal(await again.burnAllReserved(), 1);
    assert.deepEqual(await r2.countKeys(), { reserved: 1, ready: 0 });
    await r2.markDelivered(['of-r2']);
    assert.deepEqual(
      await r2.countKeys(),
      { reserved: 0, ready: 0 },
      'r2 confirmed its key: no local slave, so it went',
    );
    const outbox = await again.listOutbox(10);
    assert.deepEqual(
      outbox.flatMap((e) => e.keyIds),
      ['of-r1'],
      'only the burned key is cancelled at the peer',
    );
    await Promise.all([again.close(), r2.close()]);
  });

  it('refuses a key row, consumed-block mark or reserved cut changed in the database', async () => {
    const url = await server.createDatabase();
    const store = await open(url);
    await store.addBlocks(LINK, evenBlocks(10), 19);
    await store.takeOwnBlocks(LINK, 'kme-a', [newKey('k', { state: 'ready', pendingSlaves: ['s'], peerKme: null })]);
    await server.sql("UPDATE keys SET master = 'intruder'", dbName(url));
    await assert.rejects(store.takeForSlave('intruder', 's', ['k']), /fails its ownership check/);
    await store.takeOwnBlocks(LINK, 'kme-a', [newKey('r1'), newKey('r2')]);
    // A reserved cut edited to put the mark back lower (to hand out blocks again) is refused.
    await server.sql('UPDATE cuts SET mark_before = -1', dbName(url));
    await assert.rejects(store.returnReserved(['r1']), /a reserved cut of link l fails its check/);
    await server.sql('UPDATE marks SET seq = -1', dbName(url));
    await assert.rejects(store.takeOwnBlocks(LINK, 'kme-a', [newKey('again')]), /mark of link l fails its check/);
    await store.close();
  });

  it('connects as the libpq environment says when there is no URL', async () => {
    const url = new URL(await server.createDatabase());
    const env = { PGHOST: '127.0.0.1', PGPORT: String(server.port), PGUSER: 'postgres', PGDATABASE: dbName(url.href) };
    const saved = Object.fromEntries(Object.keys(env).map((k) => [k, process.env[k]]));
    Object.assign(process.env, env);
    try {
      const store = await PostgresKeyStore.open({}, barrier);
      await store.setPreference('sae', 'where', 'env');
      await store.close();
    } finally {
      for (const [k, v] of Object.entries(saved))
        if (v === undefined) delete process.env[k];
        else process.env[k] = v;
    }
    const rows = await server.sql<{ value: string }>('SELECT value FROM preferences', dbName(url.href));
    assert.deepEqual(rows, [{ value: '"env"' }]);
  });

  it('speaks TLS to a server that demands it, verifying its certificate, with a client certificate', async () => {
    const ca = await createCa('postgres test CA');
    const serverCert = await issueCertificate(ca, { commonName: 'db', server: { dns: [], ips: ['127.0.0.1'] } });
    const client = await issueCertificate(ca, { commonName: 'postgres', client: true });
    const tlsServer = await startPostgres({ tls: { ...serverCert, clientCa: ca.cert } });
    try {
      const url = await tlsServer.createDatabase();
      const store = await PostgresKeyStore.open(
        { url, ssl: { ca: ca.cert, cert: client.cert, key: client.key } },
        barrier,
      );
      await store.addBlocks(LINK, evenBlocks(2), 3);
      const [conn] = await tlsServer.sql<{ ssl: boolean; client_dn: string }>(
        "SELECT s.ssl, s.client_dn FROM pg_stat_ssl s JOIN pg_stat_activity a USING (pid) WHERE a.application_name = 'qks-kme'",
      );
      assert.deepEqual(conn, { ssl: true, client_dn: '/CN=postgres' });
      await store.close();
      await assert.rejects(
        PostgresKeyStore.open({ url }, barrier),
        /pg_hba.conf rejects connection .* no encryption/,
        'plain TCP refused',
      );
      const otherCa = await createCa('another CA');
      await assert.rejects(
        PostgresKeyStore.open({ url, ssl: { ca: otherCa.cert, cert: client.cert, key: client.key } }, barrier),
        /certificate/,
        'a server certificate from another CA is refused',
      );
    } finally {
      await tlsServer.stop();
    }
  });
});
