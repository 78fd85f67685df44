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
