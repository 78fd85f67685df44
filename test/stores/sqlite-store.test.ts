import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import Database from 'better-sqlite3';
import { blockAad } from '../../src/domain/material.js';
import { Barrier } from '../../src/stores/barrier.js';
import { SqliteKeyStore } from '../../src/stores/sqlite-store.js';
import { describeKeyStoreConformance } from './key-store-conformance.js';

const tempDb = () => {
  const dir = mkdtempSync(join(tmpdir(), 'qks-sqlite-'));
  return { dir, file: join(dir, 'keys.db') };
};

describeKeyStoreConformance('sqlite', async () => {
  const { dir, file } = tempDb();
  const store = new SqliteKeyStore(file);
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
    const first = new SqliteKeyStore(file);
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

    const second = new SqliteKeyStore(file);
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

  it('moves blocks of a store written with the earlier layout (keyed by number) over when opened', async () => {
    const { dir, file } = tempDb();
    const old = new Database(file);
    old.exec(`CREATE TABLE blocks (link TEXT NOT NULL, seq INTEGER NOT NULL, owner TEXT NOT NULL, sealed BLOB NOT NULL,
      PRIMARY KEY (link, seq)) WITHOUT ROWID; CREATE INDEX blocks_by_owner ON blocks (link, owner, seq);`);
    const sealed = [0, 1, 2, 3, 4].map(() => randomBytes(60));
    const insert = old.prepare('INSERT INTO blocks (link, seq, owner, sealed) VALUES (?, ?, ?, ?)');
    sealed.forEach((b, seq) => insert.run('l', seq, seq % 2 ? 'b' : 'a', b));
    old.close();

    const store = new SqliteKeyStore(file);
    assert.equal(await store.countBlocks('l', 'a'), 3);
    assert.equal(await store.countBlocks('l', 'b'), 2);
    const [k] = (await store.takeOwnBlocks('l', 'a', [
      { keyId: 'k', sizeBits: 256, blockCount: 1, masterSae: 'm', pendingSlaves: [], peerKme: null, state: 'ready' },
    ]))!;
    assert.deepEqual(k!.blocks[0], { seq: 0, sealed: sealed[0] });
    assert.deepEqual(
      await store.claimBlocks('l', 'b', [
        { keyId: 'c', sizeBits: 256, seqs: [3], masterSae: 'm', pendingSlaves: ['s'] },
      ]),
      { ok: true },
    );
    await store.close();
    const db = new Database(file, { readonly: true });
    const indexes = db.prepare("SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = 'blocks'").all();
    db.close();
    assert.deepEqual(indexes, [], 'the index by owner went with the old table');
    rmSync(dir, { recursive: true, force: true });
  });

  it('records who cut keys in a store of an earlier version, leaving its older keys alone', async () => {
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

    const store = new SqliteKeyStore(file);
    assert.deepEqual(await store.cancelKeys(['old'], 'b'), { ok: true, removed: 0 }, 'who cut it is unknown');
    assert.deepEqual(await store.countKeys(), { reserved: 0, ready: 1 });
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
    const store = new SqliteKeyStore(file);
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
    const reopened = new SqliteKeyStore(file);
    assert.deepEqual(counts, [await reopened.countBlocks('l', 'a'), await reopened.countBlocks('l', 'b')]);
    assert.deepEqual(counts, [3, 2], 'a: 0 2 4 6 less 0; b: 1 3 5 7 less 3 and 1');
    await reopened.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('holds key material only sealed: the plain bytes are nowhere in its files', async () => {
    const { dir, file } = tempDb();
    const store = new SqliteKeyStore(file);
    const barrier = new Barrier(randomBytes(32));
    const plain = Array.from({ length: 50 }, () => randomBytes(32));
    await store.addBlocks(
      'l',
      plain.map((bytes, seq) => ({ seq, owner: seq % 2 ? 'b' : 'a', sealed: barrier.seal(bytes, blockAad('l', seq)) })),
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
    assert.deepEqual(barrier.open(second.sealed, blockAad('l', second.seq)), plain[2]);
    await store.close();
    rmSync(dir, { recursive: true, force: true });
  });
});
