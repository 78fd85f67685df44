import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { Barrier } from '../../src/stores/barrier.js';
import type { KeyRecord } from '../../src/stores/key-store.js';
import { PostgresKeyStore } from '../../src/stores/postgres-store.js';
import { postgresSkip, startPrimaryWithStandby } from '../helpers/postgres.js';
import { newKey } from './key-store-conformance.js';

const barrier = new Barrier(randomBytes(32));
const LINK = 'l';

/** A primary with a synchronous standby (remote_apply): the primary is killed, the standby promoted. */
describe('PostgreSQL store with a synchronous standby', postgresSkip(), () => {
  let ha: Awaited<ReturnType<typeof startPrimaryWithStandby>>;
  before(async () => {
    ha = await startPrimaryWithStandby();
  });
  after(() => ha?.stop());

  it('loses no answered cut when the primary is killed and the standby promoted', async () => {
    const url = await ha.primary.createDatabase();
    const db = new URL(url).pathname;
    const store = await PostgresKeyStore.open({ url }, barrier);
    const blocks = Array.from({ length: 100 }, (_, i) => ({ seq: 2 * i, owner: 'kme-a', sealed: randomBytes(48) }));
    await store.addBlocks(LINK, blocks, 199);
    const answered: KeyRecord[] = [];
    for (let i = 0; i < 30; i++) answered.push(...(await store.takeOwnBlocks(LINK, 'kme-a', [newKey(`k${i}`)]))!);
    await ha.primary.kill9();
    await ha.promote();
    await store.close().catch(() => undefined);

    const promoted = await PostgresKeyStore.open({ url: ha.standby.url(db.slice(1)) }, barrier);
    assert.deepEqual(await promoted.countKeys(), { reserved: 30, ready: 0 }, 'every answered key is there');
    assert.equal(await promoted.countBlocks(LINK, 'kme-a'), 70);
    const [next] = (await promoted.takeOwnBlocks(LINK, 'kme-a', [newKey('after')]))!;
    const used = new Set(answered.flatMap((k) => k.blocks.map((b) => b.seq)));
    assert.ok(!used.has(next!.blocks[0]!.seq), 'no block cut before is cut again');
    assert.equal(next!.blocks[0]!.seq, 60);
    await promoted.close();
  });
});
