import { execFileSync } from 'node:child_process';
import { appendFileSync, chownSync, existsSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { freePorts } from './ports.js';
import { UserError } from './usage-error.js';

const PG_ROOT = '/usr/lib/postgresql';

/** The newest PostgreSQL server installed from Debian's packages, or null. */
function serverBin(): string | null {
  if (!existsSync(PG_ROOT)) return null;
  const versions = readdirSync(PG_ROOT)
    .filter((v) => existsSync(join(PG_ROOT, v, 'bin', 'initdb')))
    .sort((a, b) => Number(b) - Number(a));
  return versions[0] ? join(PG_ROOT, versions[0], 'bin') : null;
}

export interface DemoPostgres {
  /** A connection string for `database` (user postgres, trust on loopback). */
  url(database: string): string;
  createDatabase(name: string): Promise<void>;
  stop(): void;
}

/**
 * A PostgreSQL server of the demo's own, in a temporary directory, on a free loopback port: the
 * database the demo's replicas share. As root, the server runs as user postgres (initdb refuses
 * root). Says what to install when PostgreSQL is missing.
 */
export async function startDemoPostgres(): Promise<DemoPostgres> {
  const bin = serverBin();
  if (!bin) {
    throw new UserError(
      `--replicas needs a PostgreSQL server, and none is installed in ${PG_ROOT}: apt-get install postgresql`,
    );
  }
  const dir = mkdtempSync(join(tmpdir(), 'qks-demo-pg-'));
  const asRoot = process.getuid?.() === 0;
  const run = (program: string, args: string[]) =>
    execFileSync(
      asRoot ? 'setpriv' : join(bin, program),
      asRoot ? ['--reuid=postgres', '--regid=postgres', '--clear-groups', join(bin, program), ...args] : args,
      { stdio: ['ignore', 'pipe', 'pipe'] },
    );
  const data = join(dir, 'data');
  const [port] = await freePorts(1);
  try {
    if (asRoot) {
      const id = (flag: string) => Number(execFileSync('id', [flag, 'postgres'], { encoding: 'utf8' }).trim());
      chownSync(dir, id('-u'), id('-g'));
    }
    run('initdb', ['-D', data, '-A', 'trust', '-U', 'postgres', '-E', 'UTF8']);
    appendFileSync(
      join(data, 'postgresql.conf'),
      `listen_addresses = '127.0.0.1'\nport = ${port}\nunix_socket_directories = '${dir}'\n`,
    );
    run('pg_ctl', ['-D', data, '-l', join(dir, 'server.log'), '-w', 'start']);
  } catch (err) {
    rmSync(dir, { recursive: true, force: true });
    const stderr = (err as { stderr?: Buffer }).stderr?.toString().trim();
    throw new UserError(`could not start PostgreSQL for the demo: ${stderr || (err as Error).message}`);
  }
  const url = (database: string) => `postgres://postgres@127.0.0.1:${port}/${database}`;
  return {
    url,
    async createDatabase(name) {
      const client = new pg.Client({ connectionString: url('postgres') });
      await client.connect();
      try {
        await client.query(`CREATE DATABASE ${name}`);
      } finally {
        await client.end();
      }
    },
    stop() {
      try {
        run('pg_ctl', ['-D', data, '-m', 'fast', '-w', 'stop']);
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    },
  };
}
