import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import Database from 'better-sqlite3';
import { Barrier } from '../../src/stores/barrier.js';
import { SqliteKeyStore, STORE_FORMAT, StoreFormatError } from '../../src/stores/sqlite-store.js';
import { describeKeyStoreConformance } from './key-store-conformance.js';

/** The master key's MAC and seals for these tests' stores. */
const barrier = new Barrier(randomBytes(32));

const tempDb = () => {
  const dir = mkdtempSync(join(tmpdir(), 'qks-sqlite-'));
  return { dir, file: join(dir, 'keys.db') };
};

describeKeyStoreConformance('sqlite', async () => {
  const { dir, file } = tempDb();
  const store = new SqliteKeyStore(file, barrier);
  return {
    store,
    cleanup: async () => {
      await store.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
});

describe('SqliteKeyStore', () => {
  it('keeps blocks, keys, the outbox and preferences across a reopen, in WAL mode', async () => {
    const { dir, file } = tempDb();
    const first = new SqliteKeyStore(file, barrier);
    await first.addBlocks(
      'l',
      [0, 1, 2, 3].map((seq) => ({ seq, owner: seq % 2 ? 'b' : 'a', sealed: randomBytes(60) })),
      3,
    );
    await first.takeOwnBlocks('l', 'a', [
      { keyId: 'k', sizeBits: 256, blockCount: 1, masterSae: 'm', pendingSlaves: [], peerKme: 'b', state: 'reserved' },
    ]);
    await first.setPreference('m', 'log_level', 'debug');
    await first.close();

    const db = new Database(file, { readonly: true });
    assert.equal(db.pragma('journal_mode', { simple: true }), 'wal');
    db.close();

    const second = new SqliteKeyStore(file, barrier);
    assert.equal(await second.lastSeq('l'), 3);
    assert.equal(await second.countBlocks('l', 'a'), 1);
    assert.deepEqual(await second.countKeys(), { reserved: 1, ready: 0 });
    assert.equal(await second.burnAllReserved(), 1);
    assert.deepEqual(
      (await second.listOutbox(5)).map((e) => e.keyIds),
      [['k']],
    );
    assert.deepEqual(await second.getPreferences('m'), { log_level: 'debug' });
    await second.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('upgrades a file of an earlier version: its blocks and keys go, the links go on after their last block', async () => {
    const { dir, file } = tempDb();
    const old = new Database(file);
    old.exec(`CREATE TABLE blocks (link TEXT NOT NULL, seq INTEGER NOT NULL, owner TEXT NOT NULL, sealed BLOB NOT NULL,
      PRIMARY KEY (link, seq)) WITHOUT ROWID; CREATE INDEX blocks_by_owner ON blocks (link, owner, seq);
      CREATE TABLE links (link TEXT PRIMARY KEY, last_seq INTEGER NOT NULL);
      CREATE TABLE keys (key_id TEXT PRIMARY KEY, link TEXT NOT NULL, size_bits INTEGER NOT NULL, seqs TEXT NOT NULL,
        sealed BLOB NOT NULL, master TEXT NOT NULL, pending TEXT NOT NULL, peer TEXT, state TEXT NOT NULL,
        created_at INTEGER NOT NULL) WITHOUT ROWID;
      CREATE TABLE preferences (sae TEXT NOT NULL, name TEXT NOT NULL, value TEXT NOT NULL, PRIMARY KEY (sae, name)) WITHOUT ROWID;`);
    const insert = old.prepare('INSERT INTO blocks (link, seq, owner, sealed) VALUES (?, ?, ?, ?)');
    for (let seq = 0; seq < 10; seq++) insert.run('l', seq, seq % 2 ? 'b' : 'a', randomBytes(60));
    old.prepare("INSERT INTO links VALUES ('l', 9)").run();
    const key = old.prepare("INSERT INTO keys VALUES (?, 'l', 256, '[0]', ?, 'm', '[\"s\"]', ?, ?, 0)");
    key.run('reserved-key', randomBytes(60), 'kme-b', 'reserved');
    key.run('ready-key', randomBytes(60), null, 'ready');
    old.prepare(`INSERT INTO preferences VALUES ('m', 'log_level', '"debug"')`).run();
    old.close();

    const store = new SqliteKeyStore(file, barrier);
    assert.deepEqual(store.upgrade, { fromFormat: 0, keysDropped: 2, blocksDropped: 10 });
    assert.equal(await store.lastSeq('l'), 9, 'the link goes on after its last block');
    assert.equal(await store.countBlocks('l', 'a'), 0);
    assert.deepEqual(await store.countKeys(), { reserved: 0, ready: 0 });
    assert.deepEqual(
      (await store.listOutbox(5)).map((e) => [e.peerKme, e.keyIds]),
      [['kme-b', ['reserved-key']]],
      'the peer is told the reserved key is burned',
    );
    assert.deepEqual(await store.getPreferences('m'), { log_level: 'debug' });
    // The old blocks' numbers are never taken again, even if the link delivered them once more.
    await store.addBlocks(
      'l',
      [8, 9, 10, 11].map((seq) => ({ seq, owner: seq % 2 ? 'b' : 'a', sealed: randomBytes(60) })),
      11,
    );
    assert.equal(await store.countBlocks('l', 'a'), 1, 'block 10 only');
    const claimed = await store.claimBlocks('l', 'b', [
      { keyId: 'ready-key', sizeBits: 256, seqs: [11], masterSae: 'm', pendingSlaves: ['s'] },
    ]);
    assert.deepEqual(claimed, { ok: false, missingSeqs: [], existingKeyIds: ['ready-key'] });
    await store.close();
    const db = new Database(file, { readonly: true });
    assert.equal(db.pragma('user_version', { simple: true }), STORE_FORMAT);
    db.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('refuses a file of a later format, changing nothing', async () => {
    const { dir, file } = tempDb();
    await new SqliteKeyStore(file, barrier).close();
    const db = new Database(file);
    db.pragma(`user_version = ${STORE_FORMAT + 1}`);
    db.close();
    assert.throws(
      () => new SqliteKeyStore(file, barrier),
      (err: Error) =>
        err instanceof StoreFormatError && err.message.includes(file) && /newer than this QKS/.test(err.message),
    );
    rmSync(dir, { recursive: true, force: true });
  });

  it('upgrades a store of an earlier version: its keys go, cancels it remembered still hold', async () => {
    const { dir, file } = tempDb();
    const old = new Database(file);
    old.exec(`CREATE TABLE keys (key_id TEXT PRIMARY KEY, link TEXT NOT NULL, size_bits INTEGER NOT NULL,
      seqs TEXT NOT NULL, sealed BLOB NOT NULL, master TEXT NOT NULL, pending TEXT NOT NULL, delivered TEXT NOT NULL DEFAULT '[]',
      peer TEXT, state TEXT NOT NULL, created_at INTEGER NOT NULL) WITHOUT ROWID;
      CREATE TABLE cancelled (key_id TEXT PRIMARY KEY, at INTEGER NOT NULL) WITHOUT ROWID;`);
    old
      .prepare("INSERT INTO keys VALUES ('old', 'l', 256, '[1]', ?, 'm', '[\"s\"]', '[]', NULL, 'ready', ?)")
      .run(randomBytes(60), Date.now());
    old.prepare("INSERT INTO cancelled VALUES ('gone', ?)").run(Date.now());
    old.close();

    const store = new SqliteKeyStore(file, barrier);
    assert.deepEqual(await store.cancelKeys(['old'], 'b'), { ok: true, removed: 0 }, 'dropped by the upgrade');
    assert.deepEqual(await store.countKeys(), { reserved: 0, ready: 0 });
    await store.addBlocks('l', [{ seq: 3, owner: 'b', sealed: randomBytes(60) }], 3);
    const late = await store.claimBlocks('l', 'b', [
      { keyId: 'gone', sizeBits: 256, seqs: [3], masterSae: 'm', pendingSlaves: ['s'] },
    ]);
    assert.deepEqual(late, { ok: false, missingSeqs: [], existingKeyIds: ['gone'] }, 'an older cancel still holds');
    await store.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('counts blocks in memory exactly as the file does, whatever writes succeeded or failed', async () => {
    const { dir, file } = tempDb();
    const store = new SqliteKeyStore(file, barrier);
    const block = (seq: number) => ({ seq, owner: seq % 2 ? 'b' : 'a', sealed: randomBytes(60) });
    await store.addBlocks('l', [0, 1, 2, 3, 4, 5].map(block), 5);
    assert.equal(await store.countBlocks('l', 'a'), 3, 'counted from the file once');
    assert.equal(await store.countBlocks('l', 'b'), 3);
    const newKey = (keyId: string, blockCount = 1) => ({
      keyId,
      sizeBits: 256 * blockCount,
      blockCount,
      masterSae: 'm',
      pendingSlaves: [],
      peerKme: null,
      state: 'ready' as const,
    });
    // In one group commit: a duplicate add, a cut, a cut too big (refused), a claim of a missing
    // block (refused), a claim that fails half-way (its first key taken, then its ID again:
    // undone), a good claim and a discard.
    const dup = (seq: number) => ({ keyId: 'dup', sizeBits: 256, seqs: [seq], masterSae: 'm', pendingSlaves: ['s'] });
    const failed = store.claimBlocks('l', 'b', [dup(1), dup(5)]).then(
      () => 'succeeded',
      () => 'failed',
    );
    await Promise.all([
      store.addBlocks('l', [4, 5, 6, 7].map(block), 7),
      store.takeOwnBlocks('l', 'a', [newKey('k1')]),
      store.takeOwnBlocks('l', 'a', [newKey('k2', 9)]),
      store.claimBlocks('l', 'b', [
        { keyId: 'c1', sizeBits: 512, seqs: [1, 99], masterSae: 'm', pendingSlaves: ['s'] },
      ]),
      store.claimBlocks('l', 'b', [{ keyId: 'c2', sizeBits: 256, seqs: [3], masterSae: 'm', pendingSlaves: ['s'] }]),
      store.discardBlocksBefore('l', 'b', 2),
    ]);
    assert.equal(await failed, 'failed');
    const counts = [await store.countBlocks('l', 'a'), await store.countBlocks('l', 'b')];
    await store.close();
    const reopened = new SqliteKeyStore(file, barrier);
    assert.deepEqual(counts, [await reopened.countBlocks('l', 'a'), await reopened.countBlocks('l', 'b')]);
    assert.deepEqual(counts, [3, 2], 'a: 0 2 4 6 less 0; b: 1 3 5 7 less 3 and 1');
    await reopened.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('holds key material only sealed: the plain bytes are nowhere in its files', async () => {
    const { dir, file } = tempDb();
    const store = new SqliteKeyStore(file, barrier);
    const plain = Array.from({ length: 50 }, () => randomBytes(32));
    await store.addBlocks(
      'l',
      plain.map((bytes, seq) => ({ seq, owner: seq % 2 ? 'b' : 'a', sealed: barrier.sealBlock(bytes, 'l', seq) })),
      49,
    );
    await store.takeOwnBlocks('l', 'a', [
      { keyId: 'k', sizeBits: 512, blockCount: 2, masterSae: 'm', pendingSlaves: ['s'], peerKme: null, state: 'ready' },
    ]);
    const files = readdirSync(dir).map((f) => readFileSync(join(dir, f)));
    for (const bytes of plain) {
      // Any 16-byte window of a block would betray it.
      for (const f of files) assert.equal(f.indexOf(bytes.subarray(0, 16)), -1);
    }
    const taken = await store.takeForSlave('m', 's', ['k']);
    assert.ok(taken.ok);
    const second = taken.keys[0]!.blocks[1]!;
    assert.deepEqual(barrier.openBlock(second.sealed, 'l', second.seq), plain[2]);
    await store.close();
    rmSync(dir, { recursive: true, force: true });
  });
});
