import pg from 'pg';
import { QksError } from '../domain/errors.js';

/** One transaction's connection: every statement of a store method runs on it. */
export interface Tx {
  query(text: string, values?: unknown[]): Promise<pg.QueryResult>;
}

/**
 * The store runs a few dozen fixed statements, each many times a second: named, each is parsed and
 * planned once per connection instead of at every call (about half the server's work per key).
 */
const statementNames = new Map<string, string>();
const prepared = (text: string, values?: readonly unknown[]): pg.QueryConfig => {
  let name = statementNames.get(text);
  if (!name) statementNames.set(text, (name = `qks_${statementNames.size}`));
  return { name, text, values: values as unknown[] };
};

/** A connection whose statements run prepared. */
const preparedOn = (client: pg.PoolClient): Tx => ({ query: (text, values) => client.query(prepared(text, values)) });

// SQLSTATEs (PostgreSQL appendix A).
/** Worth running the whole transaction again: it lost a race and changed nothing. */
const RETRYABLE = new Set([
  '40001', // serialization_failure
  '40P01', // deadlock_detected
  '23505', // unique_violation: a concurrent insert of the same key; the rerun sees it and answers as for an existing one
]);
const QUERY_CANCELED = '57014'; // statement_timeout (or a cancel)
/** The server ended the connection: shut down, restarted, or the backend was terminated. */
const CONNECTION_ENDED = new Set(['57P01', '57P02', '57P03', '08000', '08003', '08006']);

const MAX_ATTEMPTS = 8;

const sqlState = (err: unknown): string | undefined =>
  typeof err === 'object' && err !== null && typeof (err as { code?: unknown }).code === 'string'
    ? (err as { code: string }).code
    : undefined;

/** A failure of the connection itself (not of a statement): the client is not reused. */
function isConnectionError(err: unknown): boolean {
  const code = sqlState(err);
  if (code && (CONNECTION_ENDED.has(code) || /^E[A-Z]+$/.test(code))) return true; // ECONNRESET, ECONNREFUSED...
  const message = err instanceof Error ? err.message : '';
  return /Connection terminated|connection.*(ended|closed)|Client has encountered a connection error/i.test(message);
}

/** What a caller (and an SAE) is told: the ETSI text, why, and which call; no key bytes, no password. */
function storeError(err: unknown, what: string): Error {
  if (err instanceof QksError) return err;
  const code = sqlState(err);
  if (code === QUERY_CANCELED) {
    return new QksError(
      'KEY_DATA_ACCESS_ERROR',
      `key data access error: the database exceeded the statement timeout (${what})`,
    );
  }
  if (isConnectionError(err)) {
    return new QksError(
      'KEY_DATA_ACCESS_ERROR',
      `key data access error: the connection to the database was lost (${what})`,
    );
  }
  return new QksError('KEY_DATA_ACCESS_ERROR', `PostgreSQL store: ${what} failed${code ? ` (SQLSTATE ${code})` : ''}`);
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * Runs `body` as one transaction (READ COMMITTED; the body takes the locks it needs) and commits.
 * A transaction that lost a race (serialization failure, deadlock, a concurrent insert of the same
 * ID) is rolled back and run again, a bounded number of times. Any other failure rolls back and
 * surfaces as a QksError; a connection that failed is thrown away, and the pool opens a new one for
 * the next call. A connection lost during COMMIT leaves the outcome to the server: the transaction
 * committed whole or not at all.
 */
export async function inTransaction<T>(pool: pg.Pool, what: string, body: (tx: Tx) => Promise<T>): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    let client: pg.PoolClient;
    try {
      client = await pool.connect();
    } catch (err) {
      throw storeError(err, what);
    }
    let broken: unknown;
    // The connection may fail between two statements: pg then emits 'error' on the client, which
    // would end the process unheard; the next statement fails with it instead.
    const onError = (err: Error) => (broken ??= err);
    client.on('error', onError);
    let begun = false;
    try {
      // Said, not assumed: the store's locks are made for READ COMMITTED, whatever the database's
      // default (under SERIALIZABLE, a cut that waited for its share's lock would fail every time).
      await client.query('BEGIN ISOLATION LEVEL READ COMMITTED');
      begun = true;
      const value = await body(preparedOn(client));
      await client.query('COMMIT');
      return value;
    } catch (err) {
      if (isConnectionError(err)) broken ??= err;
      else if (!broken) await client.query('ROLLBACK').catch((e: unknown) => (broken = e));
      const code = sqlState(err);
      // A pooled connection found dead at BEGIN (the server restarted meanwhile) did nothing: the
      // call runs again on a new one.
      const stale = !begun && broken !== undefined;
      if (((!broken && code && RETRYABLE.has(code)) || stale) && attempt < MAX_ATTEMPTS) {
        await sleep(Math.random() * 5 * attempt);
        continue;
      }
      throw storeError(err, what);
    } finally {
      client.off('error', onError);
      // A broken connection is closed, not put back: the next call gets a fresh one.
      client.release(broken instanceof Error ? broken : broken === undefined ? undefined : true);
    }
  }
}

/**
 * One statement on its own (it sees one snapshot): for reads. A read changes nothing, so one whose
 * connection was lost is simply asked again, on a new connection, a few times.
 */
export async function query<R extends pg.QueryResultRow>(
  pool: pg.Pool,
  what: string,
  text: string,
  values: readonly unknown[],
): Promise<R[]> {
  for (let attempt = 1; ; attempt++) {
    try {
      return (await pool.query<R>(prepared(text, values))).rows;
    } catch (err) {
      if (!isConnectionError(err) || attempt >= 3) throw storeError(err, what);
    }
  }
}
