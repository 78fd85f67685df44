import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Logger } from 'pino';
import type { Barrier } from '../stores/barrier.js';
import type { KeyStore } from '../stores/key-store.js';
import { MemoryKeyStore } from '../stores/memory-store.js';
import { describeTarget, PgSchemaError, PostgresKeyStore } from '../stores/postgres-store.js';
import { SqliteKeyStore } from '../stores/sqlite-store.js';
import { ConfigError, type KmeConfig } from './config.js';
import { inConfig } from './config-files.js';

/** Opens the store the configuration names: `store` and, for PostgreSQL, its `postgres` section. */
export async function openStore(cfg: KmeConfig, barrier: Barrier, log: Logger): Promise<KeyStore> {
  if (cfg.store === 'memory') return new MemoryKeyStore();
  if (cfg.store === 'sqlite')
    return new SqliteKeyStore(join(cfg.data_dir, 'keys.db'), barrier, { synchronous: cfg.store_synchronous });
  const pgCfg = cfg.postgres ?? {};
  const ssl = pgCfg.ssl && {
    ca: readFileSync(pgCfg.ssl.ca),
    ...(pgCfg.ssl.cert ? { cert: readFileSync(pgCfg.ssl.cert) } : {}),
    ...(pgCfg.ssl.key ? { key: readFileSync(pgCfg.ssl.key) } : {}),
  };
  // Where, never how: no password reaches the log, whether it is in the URL or the environment.
  const target = describeTarget(pgCfg);
  try {
    const store = await PostgresKeyStore.open(
      {
        ...(pgCfg.url ? { url: pgCfg.url } : {}),
        ...(ssl ? { ssl } : {}),
        ...(pgCfg.pool_size ? { poolSize: pgCfg.pool_size } : {}),
        ...(pgCfg.statement_timeout_ms ? { statementTimeoutMs: pgCfg.statement_timeout_ms } : {}),
        ...(cfg.replica ? { replica: cfg.replica.name } : {}),
        onIdleError: (err) => log.warn({ err: err.message }, 'PostgreSQL connection lost while idle; reconnecting'),
      },
      barrier,
    );
    log.info({ postgres: target, tls: !!ssl }, 'PostgreSQL store open');
    return store;
  } catch (err) {
    if (err instanceof PgSchemaError) throw new ConfigError(`${inConfig(cfg)}postgres: ${err.message}`);
    throw new ConfigError(`${inConfig(cfg)}postgres: ${(err as Error).message}`);
  }
}
