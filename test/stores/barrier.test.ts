import assert from 'node:assert/strict';
import { createDecipheriv, hkdfSync, randomFillSync } from 'node:crypto';
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { blockAad } from '../../src/domain/material.js';
import { Barrier } from '../../src/stores/barrier.js';
import { MASTER_KEY_FILE, openBarrier, withMasterKey } from '../../src/stores/master-key.js';

/** Random bytes in a buffer of their own: never in Node's shared pool, which the tests scan. */
const secret = (n: number) => randomFillSync(Buffer.alloc(n));

describe('Barrier subkeys and nonces', () => {
  // Under one key, random 96-bit nonces collide with probability n²/2^97 after n seals: past 2^32
  // seals the bound NIST sets is exceeded. Each (link, epoch of 2^16 blocks) has a key of its own.
  it('seals each link and epoch of 2^16 block numbers under a key of its own', () => {
    const master = secret(32);
    const barrier = new Barrier(master);
    const root = Buffer.from(hkdfSync('sha256', master, Buffer.alloc(0), 'qks/barrier/v2', 32));
    const subkey = (link: string, epoch: number) =>
      Buffer.from(hkdfSync('sha256', root, Buffer.alloc(0), `qks/block-key/${link}\u0000${epoch}`, 32));
    const openWith = (key: Buffer, sealed: Buffer, link: string, seq: number) => {
      const d = createDecipheriv('aes-256-gcm', key, sealed.subarray(0, 12));
      d.setAAD(Buffer.from(blockAad(link, seq)));
      d.setAuthTag(sealed.subarray(sealed.length - 16));
      return Buffer.concat([d.update(sealed.subarray(12, sealed.length - 16)), d.final()]);
    };
    const plain = secret(32);
    for (const [link, seq] of [
      ['l', 0],
      ['l', 65535],
      ['l', 65536],
      ['m', 65536],
      ['l', 5 * 65536 + 3],
    ] as const) {
      const sealed = barrier.sealBlock(plain, link, seq);
      const epoch = Math.floor(seq / 65536);
      assert.ok(openWith(subkey(link, epoch), sealed, link, seq).equals(plain));
      for (const [otherLink, otherEpoch] of [
        [link, epoch + 1],
        [link === 'l' ? 'm' : 'l', epoch],
      ] as const) {
        assert.throws(() => openWith(subkey(otherLink, otherEpoch), sealed, link, seq), /authenticate/);
      }
    }
  });

  it('opens many epochs and links in any order (subkeys derived again when dropped)', () => {
    const barrier = new Barrier(secret(32));
    const plain = secret(32);
    const sealed = Array.from({ length: 200 }, (_, i) => barrier.sealBlock(plain, `l${i % 3}`, i * 65536));
    for (let i = 199; i >= 0; i--) assert.ok(barrier.openBlock(sealed[i]!, `l${i % 3}`, i * 65536).equals(plain));
  });
});

describe('Barrier wiping', () => {
  it('leaves no copy of an opened key in Node’s shared buffer pool', () => {
    const barrier = new Barrier(secret(32));
    const blocks = [secret(32), secret(32)];
    const sealed = blocks.map((b, i) => ({ seq: 2 * i, sealed: barrier.sealBlock(b, 'l', 2 * i) }));
    const key = barrier.openKey('l', sealed, 512);
    // (Compared piece by piece: Buffer.concat would itself leave a copy in the pool.)
    assert.ok(key.subarray(0, 32).equals(blocks[0]!) && key.subarray(32).equals(blocks[1]!));
    key.fill(0);
    // Small buffers made by Buffer.allocUnsafe / Buffer.concat are slices of one 8 KiB pool; what
    // was left there stays readable by the next allocations.
    const pool = Buffer.from(Buffer.allocUnsafe(1).buffer);
    for (const b of blocks) assert.equal(pool.indexOf(b.subarray(0, 16)), -1, 'plain bytes left in the pool');
  });

  it('wipes the raw master key once its keys are derived, whatever happens', () => {
    const dir = mkdtempSync(join(tmpdir(), 'qks-master-'));
    try {
      writeFileSync(join(dir, MASTER_KEY_FILE), secret(32), { mode: 0o600 });
      let seen: Buffer | undefined;
      const barrier = withMasterKey(dir, (key) => {
        seen = key;
        assert.equal(key.length, 32);
        assert.ok(key.some((b) => b !== 0));
        return new Barrier(key);
      });
      assert.ok(
        seen!.every((b) => b === 0),
        'the raw key is zeros after use',
      );
      assert.throws(() =>
        withMasterKey(dir, (key) => {
          seen = key;
          throw new Error('failed');
        }),
      );
      assert.ok(
        seen!.every((b) => b === 0),
        'also when the use failed',
      );
      const sealed = barrier.sealBlock(secret(32), 'l', 1);
      assert.equal(openBarrier(dir).openBlock(sealed, 'l', 1).length, 32, 'the same keys from the file again');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('master key file', () => {
  const dir = mkdtempSync(join(tmpdir(), 'qks-master-'));
  const file = join(dir, MASTER_KEY_FILE);
  after(() => rmSync(dir, { recursive: true, force: true }));

  it('is refused when group or others may read or write it, with the command that fixes it', () => {
    writeFileSync(file, secret(32), { mode: 0o600 });
    for (const mode of [0o644, 0o640, 0o604, 0o620, 0o602]) {
      chmodSync(file, mode);
      assert.throws(
        () => openBarrier(dir),
        (err: Error) =>
          err.message.includes(file) &&
          err.message.includes(`mode 0${mode.toString(8)}`) &&
          err.message.includes(`chmod 600 ${file}`),
      );
    }
    chmodSync(file, 0o400);
    assert.ok(openBarrier(dir));
  });

  it('is refused when missing or not 32 bytes long', () => {
    rmSync(file, { force: true });
    assert.throws(() => openBarrier(dir), /run `qks init` first/);
    for (const length of [31, 33, 0]) {
      rmSync(file, { force: true });
      writeFileSync(file, secret(length), { mode: 0o600 });
      assert.throws(() => openBarrier(dir), /must hold exactly 32 bytes/);
    }
  });
});
