import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import Database from 'better-sqlite3';
import { QksError } from '../../src/domain/errors.js';
import { Barrier } from '../../src/stores/barrier.js';
import { SqliteKeyStore } from '../../src/stores/sqlite-store.js';
import type { IncomingBlock } from '../../src/stores/key-store.js';
import { newKey } from './key-store-conformance.js';

const barrier = new Barrier(randomBytes(32));
const dirs: string[] = [];
after(() => dirs.forEach((d) => rmSync(d, { recursive: true, force: true })));
const tempDb = () => {
  const dir = mkdtempSync(join(tmpdir(), 'qks-at-rest-'));
  dirs.push(dir);
  return join(dir, 'keys.db');
};
const blocks = (from: number, to: number): IncomingBlock[] =>
  Array.from({ length: to - from + 1 }, (_, i) => ({
    seq: from + i,
    owner: (from + i) % 2 ? 'kme-b' : 'kme-a',
    sealed: barrier.sealBlock(randomBytes(32), 'l', from + i),
  }));
const dataAccessError = (err: unknown) => err instanceof QksError && err.code === 'KEY_DATA_ACCESS_ERROR';

/** `fsync`/`fdatasync` calls of a process making `commits` commits with the given setting. */
function syncsOf(setting: string, commits: number): { syncs: number; reported: string } {
  const dir = mkdtempSync(join(tmpdir(), 'qks-sync-'));
  dirs.push(dir);
  const trace = join(dir, 'trace');
  const run = spawnSync(
    'strace',
    [
      '-f',
      '-qq',
      '-e',
      'trace=fsync,fdatasync',
      '-o',
      trace,
      process.execPath,
      'dist/test/helpers/store-commits.js',
    ].concat([join(dir, 'keys.db'), setting, String(commits)]),
    { encoding: 'utf8' },
  );
  assert.equal(run.status, 0, run.stderr);
  const syncs = readFileSync(trace, 'utf8')
    .split('\n')
    .filter((l) => /\b(fsync|fdatasync)\(/.test(l)).length;
  return { syncs, reported: run.stdout.trim() };
}

describe('SQLite store durability', () => {
  it('uses synchronous=FULL unless told otherwise, as its own connection reports', async () => {
    const file = tempDb();
    for (const [setting, expected] of [
      [undefined, 'FULL'],
      ['NORMAL', 'NORMAL'],
      ['EXTRA', 'EXTRA'],
      ['FULL', 'FULL'],
    ] as const) {
      const store = new SqliteKeyStore(file, barrier, setting ? { synchronous: setting } : {});
      assert.equal(store.synchronous, expected);
      await store.close();
    }
    assert.throws(() => new SqliteKeyStore(file, barrier, { synchronous: 'OFF' as 'FULL' }), /synchronous/);
  });

  // A power loss cannot be pulled in a test; what decides whether an answered commit survives one
  // is whether it reached the disk before the answer. Under strace, every commit of the default
  // setting is followed by an fsync of the WAL; NORMAL syncs only at checkpoints (here: at close).
  it('syncs every answered commit to disk by default; NORMAL does not', () => {
    // Syncs made by 40 commits more: opening and closing sync a few times whatever the setting.
    const extra = (setting: string) => {
      const few = syncsOf(setting, 10);
      const many = syncsOf(setting, 50);
      assert.equal(few.reported, many.reported);
      return { syncs: many.syncs - few.syncs, reported: many.reported };
    };
    const byDefault = extra('default');
    const normal = extra('NORMAL');
    assert.equal(byDefault.reported, 'FULL');
    assert.ok(byDefault.syncs >= 40, `${byDefault.syncs} syncs for 40 commits more`);
    assert.ok(normal.syncs < 10, `NORMAL: ${normal.syncs} syncs for 40 commits more`);
  });
});

describe('SQLite store at rest', () => {
  it('overwrites deleted rows: a delivered key’s and a cut block’s sealed bytes leave the file', async () => {
    const file = tempDb();
    const store = new SqliteKeyStore(file, barrier);
    const added = blocks(0, 9);
    await store.addBlocks('l', added, 9);
    await store.takeOwnBlocks('l', 'kme-a', [newKey('k', { pendingSlaves: ['s'], peerKme: null, state: 'ready' })]);
    await store.discardBlocksBefore('l', 'kme-a', 4);
    const taken = await store.takeForSlave('sae-a1', 's', ['k']);
    assert.ok(taken.ok);
    await store.close();
    const files = readdirSync(join(file, '..')).map((f) => readFileSync(join(file, '..', f)));
    // Block 0 went into key k, delivered; block 2 was discarded; block 4 is still in the pool.
    for (const seq of [0, 2]) {
      for (const f of files) assert.equal(f.indexOf(added[seq]!.sealed), -1, `block ${seq} still in the file`);
    }
    assert.ok(
      files.some((f) => f.indexOf(added[4]!.sealed) >= 0),
      'the scan finds what is there',
    );
  });

  it('empties the WAL, which secure_delete does not reach, while the store is open', async () => {
    const file = tempDb();
    const store = new SqliteKeyStore(file, barrier);
    const added = blocks(0, 9);
    await store.addBlocks('l', added, 9);
    await store.takeOwnBlocks('l', 'kme-a', [newKey('k', { pendingSlaves: ['s'], peerKme: null, state: 'ready' })]);
    assert.ok((await store.takeForSlave('sae-a1', 's', ['k'])).ok);
    const inFiles = () =>
      readdirSync(join(file, '..')).some((f) => readFileSync(join(file, '..', f)).indexOf(added[0]!.sealed) >= 0);
    assert.ok(inFiles(), 'the WAL still holds the delivered block (the scan finds what is there)');
    store.truncateWal();
    assert.equal(inFiles(), false, 'block 0 is in no file once the WAL is emptied');
    await store.close();
  });

  it('refuses a key whose slaves or master were edited in the file: nobody gets it, nothing changes', async () => {
    const file = tempDb();
    const store = new SqliteKeyStore(file, barrier);
    await store.addBlocks('l', blocks(0, 9), 9);
    const ready = { pendingSlaves: ['sae-b1'], peerKme: null, state: 'ready' as const };
    await store.takeOwnBlocks('l', 'kme-a', [newKey('k1', ready), newKey('k2', ready)]);
    // Someone with write access to keys.db but not the master key.
    const attacker = new Database(file);
    attacker.prepare(`UPDATE keys SET pending = '["sae-b2"]' WHERE key_id = 'k1'`).run();
    attacker.prepare(`UPDATE keys SET master = 'sae-a2' WHERE key_id = 'k2'`).run();
    attacker.close();
    await assert.rejects(store.takeForSlave('sae-a1', 'sae-b2', ['k1']), dataAccessError);
    await assert.rejects(store.takeForSlave('sae-a1', 'sae-b1', ['k1']), dataAccessError);
    await assert.rejects(store.takeForSlave('sae-a2', 'sae-b1', ['k2']), dataAccessError);
    assert.deepEqual(await store.countKeys(), { reserved: 0, ready: 2 }, 'the rows are left as they were');
    await store.close();
  });

  it('refuses a relayed key whose mask was edited or removed in the file', async () => {
    const file = tempDb();
    const store = new SqliteKeyStore(file, barrier);
    await store.addBlocks('l', blocks(0, 9), 9);
    const keep = { masterSae: 'sae-a1', pendingSlaves: ['sae-b1'] };
    const relayed = (keyId: string, seq: number) => ({ keyId, sizeBits: 256, seqs: [seq], mask: randomBytes(32) });
    await store.relayIn('l', 'kme-a', [relayed('m1', 0), relayed('m2', 2), relayed('m3', 4)], [], [], keep);
    const attacker = new Database(file);
    attacker.prepare(`UPDATE keys SET mask = randomblob(32) WHERE key_id = 'm1'`).run();
    attacker.prepare(`UPDATE keys SET mask = NULL WHERE key_id = 'm2'`).run();
    attacker.close();
    await assert.rejects(store.takeForSlave('sae-a1', 'sae-b1', ['m1']), dataAccessError);
    await assert.rejects(store.takeForSlave('sae-a1', 'sae-b1', ['m2']), dataAccessError);
    const intact = await store.takeForSlave('sae-a1', 'sae-b1', ['m3']);
    assert.ok(intact.ok && intact.keys[0]!.mask?.length === 32, 'an untouched one is served with its mask');
    await store.close();
  });

  it('never serves a consumed block put back from an earlier copy, nor after its mark was deleted', async () => {
    const file = tempDb();
    const store = new SqliteKeyStore(file, barrier);
    await store.addBlocks('l', blocks(0, 11), 11);
    const attacker = new Database(file);
    const backup = attacker.prepare("SELECT * FROM blocks WHERE link = 'l' AND owner = 'kme-a' AND seq <= 2").all();
    const restore = () => {
      const put = attacker.prepare('INSERT OR IGNORE INTO blocks (link, owner, seq, sealed) VALUES (?, ?, ?, ?)');
      for (const r of backup as Array<{ link: string; owner: string; seq: number; sealed: Buffer }>)
        put.run(r.link, r.owner, r.seq, r.sealed);
    };
    const [first] = (await store.takeOwnBlocks('l', 'kme-a', [newKey('k1', { blockCount: 2, sizeBits: 512 })]))!;
    assert.deepEqual(
      first!.blocks.map((b) => b.seq),
      [0, 2],
    );
    restore();
    const [second] = (await store.takeOwnBlocks('l', 'kme-a', [newKey('k2')]))!;
    assert.deepEqual(
      second!.blocks.map((b) => b.seq),
      [4],
      'blocks 0 and 2 were cut already',
    );
    // A block added again by the link (a replay) is not taken back either.
    await store.addBlocks('l', blocks(0, 0), 11);
    // Deleting the mark too: the blocks present then are not trusted, the restored ones least of all.
    attacker.prepare('DELETE FROM marks').run();
    restore();
    const third = await store.takeOwnBlocks('l', 'kme-a', [newKey('k3')]);
    assert.equal(third, null, 'no block of kme-a is trusted any more');
    await store.addBlocks('l', blocks(12, 13), 13);
    const [fourth] = (await store.takeOwnBlocks('l', 'kme-a', [newKey('k4')]))!;
    assert.deepEqual(
      fourth!.blocks.map((b) => b.seq),
      [12],
    );
    // Block 14 and the mark row copied before 14 was cut, then put back, the mark's MAC valid.
    await store.addBlocks('l', blocks(14, 17), 17);
    const early = {
      marks: attacker.prepare('SELECT * FROM marks').all() as Array<Record<string, unknown>>,
      block: attacker.prepare("SELECT * FROM blocks WHERE owner = 'kme-a' AND seq = 14").get() as Record<
        string,
        unknown
      >,
    };
    await store.takeOwnBlocks('l', 'kme-a', [newKey('k4b')]);
    attacker.prepare('DELETE FROM marks').run();
    for (const m of early.marks) attacker.prepare('INSERT INTO marks VALUES (@link, @owner, @seq, @tag)').run(m);
    attacker.prepare('INSERT INTO blocks VALUES (@link, @owner, @seq, @sealed)').run(early.block);
    const [fifth] = (await store.takeOwnBlocks('l', 'kme-a', [newKey('k4c')]))!;
    assert.deepEqual(
      fifth!.blocks.map((b) => b.seq),
      [16],
      'block 14 was cut already',
    );
    // A mark edited by hand fails its check.
    attacker.prepare("UPDATE marks SET seq = -1 WHERE owner = 'kme-a'").run();
    restore();
    await assert.rejects(store.takeOwnBlocks('l', 'kme-a', [newKey('k5')]), dataAccessError);
    attacker.close();
    await store.close();
  });
});
