import Database from 'better-sqlite3';
import { join } from 'node:path';

/**
 * A read-only look into a running KME's SQLite store (WAL mode lets a reader in beside the
 * KME's writer). Counts only: nothing here reads key material.
 */
export class StorePeek {
  readonly #db: Database.Database;

  constructor(dataDir: string) {
    this.#db = new Database(join(dataDir, 'keys.db'), { readonly: true, fileMustExist: true });
  }

  #count(sql: string): number {
    return (this.#db.prepare(sql).get() as { n: number }).n;
  }

  /** Cancels of burned keys not yet confirmed by the peer. */
  outboxRows(): number {
    return this.#count('SELECT count(*) AS n FROM outbox');
  }

  reservedKeys(): number {
    return this.#count("SELECT count(*) AS n FROM keys WHERE state = 'reserved'");
  }

  readyKeys(): number {
    return this.#count("SELECT count(*) AS n FROM keys WHERE state = 'ready'");
  }

  close(): void {
    this.#db.close();
  }
}
