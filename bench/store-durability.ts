/**
 * What durability costs the SQLite store: key requests as kme-a serves them (cut one key from the
 * oldest own block, then mark it delivered, each awaited as the KME awaits it), at concurrency 1
 * (every write its own commit) and 8 (writes of one turn share a commit), under each `synchronous`
 * setting, runs interleaved. Prints median keys/s and wall-clock µs per key.
 *
 *   npm run build && node dist/bench/store-durability.js [--seconds 3] [--runs 3] [--levels 1,8]
 */
import { randomBytes, randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { Barrier } from '../src/stores/barrier.js';
import { SqliteKeyStore, type Synchronous } from '../src/stores/sqlite-store.js';
import { newKey } from '../test/stores/key-store-conformance.js';
import { table } from './stats.js';

const { values: opt } = parseArgs({
  options: {
    seconds: { type: 'string', default: '3' },
    runs: { type: 'string', default: '3' },
    levels: { type: 'string', default: '1,8' },
  },
});
const seconds = Number(opt.seconds);
const runs = Number(opt.runs);
const levels = opt.levels.split(',').map(Number);
const SETTINGS: Synchronous[] = ['NORMAL', 'FULL', 'EXTRA'];
const LINK = 'link-ab';

const barrier = new Barrier(randomBytes(32));
const dir = mkdtempSync(join(tmpdir(), 'qks-durability-bench-'));
const median = (xs: readonly number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

/** Keys per second served by a fresh store with `setting` at `concurrency` for `seconds`. */
async function run(setting: Synchronous, concurrency: number, id: number): Promise<number> {
  const store = new SqliteKeyStore(join(dir, `keys-${id}.db`), barrier, { synchronous: setting });
  let nextSeq = 0;
  const addBlocks = (n: number) => {
    const added = Array.from({ length: n }, () => {
      const seq = nextSeq++;
      return { seq, owner: seq % 2 ? 'kme-b' : 'kme-a', sealed: barrier.sealBlock(randomBytes(32), LINK, seq) };
    });
    return store.addBlocks(LINK, added, nextSeq - 1);
  };
  for (let i = 0; i < 20; i++) await addBlocks(2000);
  let keys = 0;
  const end = performance.now() + seconds * 1000;
  const loop = async () => {
    while (performance.now() < end) {
      const [record] = (await store.takeOwnBlocks(LINK, 'kme-a', [newKey(randomUUID())]))!;
      await store.markDelivered([record!.keyId]);
      keys++;
      if (keys % 64 === 0) await addBlocks(128);
    }
  };
  const start = performance.now();
  await Promise.all(Array.from({ length: concurrency }, loop));
  const rate = keys / ((performance.now() - start) / 1000);
  await store.close();
  return rate;
}

const results = new Map<string, number[]>();
let id = 0;
for (let r = 0; r < runs; r++) {
  for (const level of levels) {
    for (const setting of SETTINGS) {
      const rate = await run(setting, level, id++);
      const key = `${setting}@${level}`;
      results.set(key, [...(results.get(key) ?? []), rate]);
      console.error(`run ${r + 1}: ${setting}, concurrency ${level}: ${rate.toFixed(0)} keys/s`);
    }
  }
}
rmSync(dir, { recursive: true, force: true });
const rows = levels.flatMap((level) =>
  SETTINGS.map((setting) => {
    const rate = median(results.get(`${setting}@${level}`)!);
    // Each loop waits for its own requests: the time one request takes, commits included.
    return [String(level), setting, rate.toFixed(0), ((level * 1e6) / rate).toFixed(0)];
  }),
);
console.log(table(['concurrency', 'synchronous', 'keys/s (median)', 'µs per request'], rows));
console.log(`\nnode dist/bench/store-durability.js --seconds ${seconds} --runs ${runs} --levels ${levels.join(',')}`);
