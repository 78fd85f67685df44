/**
 * Run by tests in a process of its own (under strace): opens a SQLite key store with the given
 * `synchronous` setting ('default' for none) and makes `commits` separate commits, each awaited
 * as the KME awaits a write before it answers.
 *
 *   node dist/test/helpers/store-commits.js <file> <setting|default> <commits>
 */
import { randomBytes } from 'node:crypto';
import { Barrier } from '../../src/stores/barrier.js';
import { SqliteKeyStore, type Synchronous } from '../../src/stores/sqlite-store.js';

const [file, setting, commits] = process.argv.slice(2) as [string, string, string];
const store = new SqliteKeyStore(
  file,
  new Barrier(randomBytes(32)),
  setting === 'default' ? {} : { synchronous: setting as Synchronous },
);
for (let seq = 0; seq < Number(commits); seq++) {
  await store.addBlocks('l', [{ seq, owner: 'a', sealed: randomBytes(60) }], seq);
}
console.log(store.synchronous);
await store.close();
