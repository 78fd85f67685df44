/**
 * The SQLite store alone, doing kme-a's part of key delivery: cut one key from the oldest own
 * block, then mark it delivered, 8 pairs per turn of the event loop (as at concurrency 16, so 8
 * writes share a commit), while the link adds about 2 blocks per key (1 Mbit/s against 2,000
 * pairs/s). Prints the store's CPU time per key.
 *
 *   npm run build && node dist/bench/key-store-cut.js [--blocks 400000] [--keys 12000] [--runs 5]
 */
import { randomBytes, randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import type { IncomingBlock } from '../src/stores/key-store.js';
import { Barrier } from '../src/stores/barrier.js';
import { SqliteKeyStore } from '../src/stores/sqlite-store.js';
import { newKey } from '../test/stores/key-store-conformance.js';

const { values: opt } = parseArgs({
  options: {
    blocks: { type: 'string', default: '400000' },
    keys: { type: 'string', default: '12000' },
    runs: { type: 'string', default: '5' },
  },
});
const perShare = Number(opt.blocks);
const keysPerRun = Number(opt.keys);
const runs = Number(opt.runs);
const LINK = 'link-ab';
const SEALED_BYTES = 60; // a sealed 256-bit block

const dir = mkdtempSync(join(tmpdir(), 'qks-store-bench-'));
// CPU time only: what durability costs in waiting for the disk is bench/store-durability.ts's.
const store = new SqliteKeyStore(join(dir, 'keys.db'), new Barrier(randomBytes(32)), { synchronous: 'NORMAL' });
let nextSeq = 0;
/** The link's next `n` blocks, alternating between the two ends as a real link's do. */
const addBlocks = (n: number) => {
  const added: IncomingBlock[] = Array.from({ length: n }, () => {
    const seq = nextSeq++;
    return { seq, owner: seq % 2 ? 'kme-b' : 'kme-a', sealed: randomBytes(SEALED_BYTES) };
  });
  return store.addBlocks(LINK, added, nextSeq - 1);
};
const median = (xs: readonly number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
for (let added = 0; added < 2 * perShare; added += 2000) await addBlocks(2000);

const results: number[] = [];
for (let run = 0; run < runs; run++) {
  const cpu0 = process.cpuUsage();
  for (let done = 0; done < keysPerRun; done += 8) {
    const cut = await Promise.all(
      Array.from({ length: 8 }, () => store.takeOwnBlocks(LINK, 'kme-a', [newKey(randomUUID())])),
    );
    await Promise.all(cut.map((records) => store.markDelivered([records![0]!.keyId])));
    await addBlocks(16);
  }
  const cpu = process.cpuUsage(cpu0);
  results.push((cpu.user + cpu.system) / keysPerRun);
  console.error(`run ${run + 1}: ${results.at(-1)!.toFixed(1)} µs CPU per key`);
}
await store.close();
rmSync(dir, { recursive: true, force: true });
console.log(
  `SQLite store, cut + confirm of one key (8 per commit) with the link adding 2 blocks per key, ` +
    `${perShare} blocks per share: median ${median(results).toFixed(1)} µs CPU per key over ${runs} runs of ${keysPerRun} keys`,
);
console.log(
  `Reproduce: npm run build && node dist/bench/key-store-cut.js --blocks ${perShare} --keys ${keysPerRun} --runs ${runs}`,
);
