import pg from 'pg';

export interface PostgresOptions {
  /** A libpq connection string; without it, the libpq environment (PGHOST, PGPORT, PGUSER, ...) says. */
  readonly url?: string;
  /** TLS to the server: the CA that signed its certificate (PEM), and a client certificate and key. */
  readonly ssl?: { readonly ca: string | Buffer; readonly cert?: string | Buffer; readonly key?: string | Buffer };
  /** Connections at most (default 10). */
  readonly poolSize?: number;
  /** A statement running longer is cancelled and its call fails, changing nothing (default 10 000 ms). */
  readonly statementTimeoutMs?: number;
  /**
   * The replica this store serves, when several processes serve one KME: its reservations are its
   * own, and burnAllReserved (at its start) burns only them, never those of replicas still running.
   */
  readonly replica?: string;
  /** Told of a connection that failed while idle in the pool (it is replaced on the next call). */
  readonly onIdleError?: (err: Error) => void;
}

const INT8_OID = 20;

/** Where a store connects, for logs: no password, whether in the URL or the environment. */
export function describeTarget(options: Pick<PostgresOptions, 'url'>): string {
  if (options.url) {
    try {
      const u = new URL(options.url);
      return `${u.hostname || '(socket)'}${u.port ? `:${u.port}` : ''}${u.pathname}`;
    } catch {
      return '(connection string)';
    }
  }
  const env = process.env;
  return `${env['PGHOST'] ?? 'localhost'}:${env['PGPORT'] ?? '5432'}/${env['PGDATABASE'] ?? env['PGUSER'] ?? ''}`;
}

/** The store's connections: TLS verified, a statement timeout, BIGINT read as numbers. */
export function newPool(options: PostgresOptions): pg.Pool {
  const pool = new pg.Pool({
    ...(options.url ? { connectionString: options.url } : {}),
    ...(options.ssl ? { ssl: { ...options.ssl, rejectUnauthorized: true } } : {}),
    max: options.poolSize ?? 10,
    statement_timeout: options.statementTimeoutMs ?? 10_000,
    // A transaction left open by a process that hung releases its locks.
    idle_in_transaction_session_timeout: 60_000,
    connectionTimeoutMillis: 10_000,
    application_name: 'qks-kme',
    // Block numbers and times are BIGINT; they stay below 2^53.
    types: {
      getTypeParser: ((oid: number, format?: 'text' | 'binary') =>
        oid === INT8_OID ? Number : pg.types.getTypeParser(oid, format)) as typeof pg.types.getTypeParser,
    },
  });
  // An idle connection the server ended emits here; without a listener it would end the process.
  pool.on('error', (err) => options.onIdleError?.(err));
  return pool;
}
