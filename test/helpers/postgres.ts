import { execFileSync, spawnSync } from 'node:child_process';
import { appendFileSync, chownSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { freePorts } from '../../src/cli/ports.js';

// A real PostgreSQL 15 server in a temp dir, as /work/shared/notes/real-peers-2.md section 1 starts
// one: initdb as user postgres (it refuses root), its socket in the temp dir, a free TCP port on
// 127.0.0.1, trust authentication. Nothing is left behind by stop(), even after a kill -9.

const BIN = '/usr/lib/postgresql/15/bin';
const inCi = !!process.env['CI'] && process.env['CI'] !== 'false';

/** Why PostgreSQL cannot run here, or undefined when it can. */
export function postgresMissing(): string | undefined {
  if (!existsSync(join(BIN, 'initdb'))) return `no PostgreSQL 15 at ${BIN} (scripts/test.sh installs postgresql-15)`;
  if (process.getuid?.() !== 0) return 'needs root (to run the server as user postgres)';
  if (spawnSync('id', ['postgres']).status !== 0) return 'no user postgres';
  return undefined;
}

/**
 * For `describe(name, postgresSkip(), ...)`: skips with the reason when PostgreSQL is missing,
 * except with CI=true, where a missing server is a failure (the first start throws it).
 */
export function postgresSkip(): { skip: string | false } {
  const why = postgresMissing();
  return { skip: why && !inCi ? `PostgreSQL not available: ${why}` : false };
}

/** Runs a PostgreSQL binary as user postgres (`setpriv` execs, so a spawned PID is the program's). */
function asPostgres(program: string, args: readonly string[]): string {
  return execFileSync(
    'setpriv',
    ['--reuid=postgres', '--regid=postgres', '--clear-groups', join(BIN, program), ...args],
    { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] },
  );
}

export interface PgServer {
  readonly port: number;
  readonly dataDir: string;
  /** A connection string for a database of this server (user postgres, no password: trust). */
  url(database?: string): string;
  /** A new empty database; returns its connection string. */
  createDatabase(): Promise<string>;
  /** Runs SQL as the superuser on database `postgres` (or `database`). */
  sql<R extends pg.QueryResultRow = pg.QueryResultRow>(text: string, database?: string): Promise<R[]>;
  /** The server's log so far. */
  log(): string;
  /** The postmaster's PID, from postmaster.pid. */
  pid(): number;
  /** A clean stop then start, on the same port and data. */
  restart(): Promise<void>;
  /** SIGKILL to the postmaster; its leftover shared-memory segment is removed. */
  kill9(): Promise<void>;
  start(): Promise<void>;
  /** Stops the server (if running) and removes its directory. */
  stop(): Promise<void>;
}

export interface PgServerOptions {
  /** Extra postgresql.conf settings, e.g. `{ wal_level: 'replica' }`. */
  readonly settings?: Readonly<Record<string, string>>;
  /** A directory (owned by postgres) to put the data in; default: a new temp dir. */
  readonly baseDir?: string;
  /** The data dir's name under baseDir. */
  readonly name?: string;
  /** Make the data dir from this server with pg_basebackup (a streaming standby) instead of initdb. */
  readonly standbyOf?: PgServer;
  /**
   * TLS (PEM): the server's certificate and key, and the CA its clients' certificates must chain to.
   * TCP connections must then use TLS with a client certificate; the helper's own use the socket.
   */
  readonly tls?: { readonly cert: string; readonly key: string; readonly clientCa: string };
}

const quote = (v: string) => (/^[0-9]+$/.test(v) ? v : `'${v.replace(/'/g, "''")}'`);

/** Starts one server. Throws (with the reason) when PostgreSQL is missing. */
export async function startPostgres(options: PgServerOptions = {}): Promise<PgServer> {
  const why = postgresMissing();
  if (why) throw new Error(`PostgreSQL cannot run: ${why}`);
  const ownDir = options.baseDir === undefined;
  const base = options.baseDir ?? mkdtempSync(join(tmpdir(), 'qks-pg-'));
  const pgUid = Number(execFileSync('id', ['-u', 'postgres'], { encoding: 'utf8' }).trim());
  const pgGid = Number(execFileSync('id', ['-g', 'postgres'], { encoding: 'utf8' }).trim());
  chownSync(base, pgUid, pgGid);
  const dataDir = join(base, options.name ?? 'data');
  const [port] = (await freePorts(1)) as [number];
  if (options.standbyOf) {
    asPostgres('pg_basebackup', [
      ...['-h', '127.0.0.1', '-p', String(options.standbyOf.port), '-U', 'postgres'],
      ...['-D', dataDir, '-R', '-X', 'stream', '-c', 'fast'],
    ]);
  } else {
    asPostgres('initdb', ['-D', dataDir, '-A', 'trust', '-U', 'postgres', '--no-sync', '-E', 'UTF8']);
  }
  const tlsSettings: Record<string, string> = {};
  if (options.tls) {
    // The server refuses a key file others can read; it runs as postgres.
    for (const [name, pem] of [
      ['server.crt', options.tls.cert],
      ['server.key', options.tls.key],
      ['client-ca.crt', options.tls.clientCa],
    ] as const) {
      writeFileSync(join(dataDir, name), pem, { mode: 0o600 });
      chownSync(join(dataDir, name), pgUid, pgGid);
    }
    Object.assign(tlsSettings, {
      ssl: 'on',
      ssl_cert_file: 'server.crt',
      ssl_key_file: 'server.key',
      ssl_ca_file: 'client-ca.crt',
    });
    const hba = join(dataDir, 'pg_hba.conf');
    writeFileSync(
      hba,
      'local all all trust\nhostssl all all 127.0.0.1/32 trust clientcert=verify-ca\nhostnossl all all 127.0.0.1/32 reject\n' +
        readFileSync(hba, 'utf8'),
    );
  }
  const settings: Record<string, string> = {
    listen_addresses: '127.0.0.1',
    port: String(port),
    unix_socket_directories: base,
    fsync: 'off',
    max_connections: '200',
    ...tlsSettings,
    ...options.settings,
  };
  appendFileSync(
    join(dataDir, 'postgresql.conf'),
    Object.entries(settings)
      .map(([k, v]) => `\n${k} = ${quote(v)}`)
      .join('') + '\n',
  );
  const logFile = join(base, `${options.name ?? 'data'}.log`);
  const admin = (database = 'postgres') =>
    // The unix socket: it works whatever TCP demands (TLS).
    new pg.Client({ host: base, port, user: 'postgres', database });
  let databases = 0;
  const pidOf = () => Number(readFileSync(join(dataDir, 'postmaster.pid'), 'utf8').split('\n')[0]);

  const server: PgServer = {
    port,
    dataDir,
    url: (database = 'postgres') => `postgres://postgres@127.0.0.1:${port}/${database}`,
    async createDatabase() {
      const name = `qks_test_${process.pid}_${++databases}`;
      await server.sql(`CREATE DATABASE ${name} TEMPLATE template0`);
      return server.url(name);
    },
    async sql<R extends pg.QueryResultRow>(text: string, database?: string) {
      const client = admin(database);
      await client.connect();
      try {
        return (await client.query<R>(text)).rows;
      } finally {
        await client.end();
      }
    },
    pid: pidOf,
    log: () => readFileSync(logFile, 'utf8'),
    async start() {
      asPostgres('pg_ctl', ['-D', dataDir, '-l', logFile, '-w', '-t', '30', 'start']);
    },
    async restart() {
      asPostgres('pg_ctl', ['-D', dataDir, '-m', 'fast', '-w', 'stop']);
      await server.start();
    },
    async kill9() {
      const lines = readFileSync(join(dataDir, 'postmaster.pid'), 'utf8').split('\n');
      const pid = Number(lines[0]);
      // Line 7 holds the SysV shared-memory key and ID; a killed postmaster leaves the segment.
      const shmId = lines[6]?.trim().split(/\s+/)[1];
      process.kill(pid, 'SIGKILL');
      await waitGone(pid);
      // The children exit on their own once the postmaster is gone; the segment goes once they have.
      if (shmId !== undefined) await removeSegment(shmId);
    },
    async stop() {
      if (existsSync(join(dataDir, 'postmaster.pid'))) {
        try {
          asPostgres('pg_ctl', ['-D', dataDir, '-m', 'immediate', '-w', 'stop']);
        } catch {
          // Not running (a stale pid file after a kill -9): nothing to stop.
        }
      }
      if (ownDir) rmSync(base, { recursive: true, force: true });
    },
  };
  await server.start();
  return server;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function waitGone(pid: number): Promise<void> {
  for (let i = 0; i < 200; i++) {
    try {
      process.kill(pid, 0);
      // A zombie still answers signal 0 until PID 1 reaps it; its state in /proc says so.
      const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
      if (stat.split(') ')[1]?.startsWith('Z')) return;
    } catch {
      return;
    }
    await sleep(25);
  }
  throw new Error(`process ${pid} did not exit`);
}

/** Removes one SysV segment once nothing is attached to it (`ipcrm` by its exact ID only). */
async function removeSegment(shmId: string): Promise<void> {
  for (let i = 0; i < 200; i++) {
    const row = execFileSync('ipcs', ['-m'], { encoding: 'utf8' })
      .split('\n')
      .map((l) => l.trim().split(/\s+/))
      .find((cols) => cols[1] === shmId);
    if (!row) return;
    if (row[5] === '0') {
      spawnSync('ipcrm', ['-m', shmId]);
      return;
    }
    await sleep(25);
  }
}

/**
 * A primary with one synchronous standby (streaming, `remote_apply`): a commit returns once the
 * standby has applied it. `promote()` makes the standby the primary after the primary died.
 * Pitfall (notes): the standby's copy of synchronous_standby_names must be empty, or every commit
 * on it hangs once promoted.
 */
export async function startPrimaryWithStandby(): Promise<{
  primary: PgServer;
  standby: PgServer;
  promote(): Promise<void>;
  stop(): Promise<void>;
}> {
  const base = mkdtempSync(join(tmpdir(), 'qks-pg-ha-'));
  const primary = await startPostgres({
    baseDir: base,
    name: 'p',
    settings: {
      wal_level: 'replica',
      max_wal_senders: '4',
      synchronous_standby_names: 'FIRST 1 (standby1)',
      synchronous_commit: 'remote_apply',
    },
  });
  const standby = await startPostgres({
    baseDir: base,
    name: 's',
    standbyOf: primary,
    settings: { cluster_name: 'standby1', synchronous_standby_names: '' },
  });
  let sync = false;
  for (let i = 0; i < 200 && !sync; i++) {
    const rows = await primary.sql<{ sync_state: string }>('SELECT sync_state FROM pg_stat_replication');
    sync = rows.some((r) => r.sync_state === 'sync');
    if (!sync) await sleep(25);
  }
  if (!sync) {
    await standby.stop();
    await primary.stop();
    rmSync(base, { recursive: true, force: true });
    throw new Error('the standby did not become a synchronous standby within 5 s');
  }
  return {
    primary,
    standby,
    async promote() {
      asPostgres('pg_ctl', ['-D', standby.dataDir, '-w', 'promote']);
    },
    async stop() {
      await standby.stop();
      await primary.stop();
      rmSync(base, { recursive: true, force: true });
    },
  };
}
