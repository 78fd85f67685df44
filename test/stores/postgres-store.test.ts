import { randomBytes } from 'node:crypto';
import { after, before, describe } from 'node:test';
import { Barrier } from '../../src/stores/barrier.js';
import { PostgresKeyStore } from '../../src/stores/postgres-store.js';
import { postgresSkip, startPostgres, type PgServer } from '../helpers/postgres.js';
import { describeKeyStoreConformance } from './key-store-conformance.js';
import { describeLeaseConformance } from './lease-conformance.js';

/** The master key's MAC and seals for these tests' stores. */
const barrier = new Barrier(randomBytes(32));

describe('PostgreSQL store', postgresSkip(), () => {
  let server: PgServer;
  before(async () => {
    server = await startPostgres();
  });
  after(() => server?.stop());

  // A new database per test: each starts from an empty schema, migrated by the store itself.
  describeKeyStoreConformance('postgres', async () => {
    const store = await PostgresKeyStore.open({ url: await server.createDatabase() }, barrier);
    return { store, cleanup: () => store.close() };
  });

  // Leases expire by the database's clock: the suite really waits.
  describeLeaseConformance('postgres', async () => {
    const store = await PostgresKeyStore.open({ url: await server.createDatabase() }, barrier);
    return {
      leases: store,
      pass: (ms: number) => new Promise((resolve) => setTimeout(resolve, ms)),
      cleanup: () => store.close(),
    };
  });
});
