import assert from 'node:assert/strict';
import { randomFillSync } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, it } from 'node:test';
import { Barrier } from '../../src/stores/barrier.js';
import type { KeyCustody } from '../../src/stores/custody/key-custody.js';
import { MemoryCustody } from '../../src/stores/custody/memory-custody.js';
import { createNextKek, DATA_KEYS_FILE, EnvelopeKeys, readCensus } from '../../src/stores/envelope-keys.js';
import { KekRotation, PAUSE_AFTER_ENV } from '../../src/stores/kek-rotation.js';

const plain = () => randomFillSync(Buffer.alloc(32));

/** A custody that counts its calls: the HSM must not be asked per block. */
class CountingCustody extends MemoryCustody {
  wraps = 0;
  unwraps = 0;
  override wrap(kek: string, dek: Buffer): Buffer {
    this.wraps++;
    return super.wrap(kek, dek);
  }
  override unwrap(kek: string, wrapped: Buffer): Buffer {
    this.unwraps++;
    return super.unwrap(kek, wrapped);
  }
  override close(): void {} // shared by the "processes" of a test; MemoryCustody wipes on close
}

describe('file-mode barrier keys', () => {
  it('are derived from master.key byte for byte as before HSM support (vector from the previous release)', () => {
    const barrier = new Barrier(Buffer.alloc(32, 7));
    const sealed = Buffer.from(
      '9550dcd168cdb9b22486310c2f5a7e41c00484384438b4d2826d05c20e8527655d45b9a445fe5743292d37ec',
      'hex',
    );
    assert.deepEqual(barrier.openBlock(sealed, 'link-ab', 70000), Buffer.alloc(16, 0x5a));
    assert.equal(
      barrier.tag('block', ['link-ab', 1]).toString('hex'),
      'a5f37d6123013e435258134564e5f6af51c231164a09529ff15fa04a94b49cad',
    );
  });
});

describe('envelope keys: data keys wrapped under a KEK', () => {
  let dir: string;
  let custody: CountingCustody;
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'qks-envelope-'));
    custody = new CountingCustody();
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  const open = (c: KeyCustody = custody) => new EnvelopeKeys(c, 'kek', dir);

  it('makes the first KEK and each data key when first needed; calls the custody per data key, never per block', () => {
    const keys = open();
    const barrier = new Barrier(keys);
    assert.deepEqual(custody.listKeks(), ['kek.1']);
    const sealed = Array.from({ length: 200 }, (_, i) => ({ seq: i * 1000, p: plain() }));
    const boxes = sealed.map(({ seq, p }) => barrier.sealBlock(p, 'l', seq));
    // Blocks 0..199000 span epochs 0..3 of 2^16: the rows key and four block keys.
    assert.equal(custody.wraps, 5);
    assert.deepEqual(readCensus(dir), { 'kek.1': 5 });
    custody.unwraps = 0;
    const again = new Barrier(open()); // another process on the same data_dir
    sealed.forEach(({ seq, p }, i) => assert.deepEqual(again.openBlock(boxes[i]!, 'l', seq), p));
    assert.equal(custody.unwraps, 5, 'each data key unwrapped once in the new process');
    assert.equal(again.tag('x', [1]).toString('hex'), barrier.tag('x', [1]).toString('hex'), 'same row key');
  });

  it('keeps no data key in clear in its file', () => {
    const keys = open();
    const deks = [keys.rowKey(), keys.blockKey('l', 0), keys.blockKey('m', 3)];
    const file = readFileSync(join(dir, DATA_KEYS_FILE));
    for (const dek of deks) {
      for (const form of [dek, Buffer.from(dek.toString('hex')), Buffer.from(dek.toString('base64'))])
        assert.equal(file.indexOf(form), -1);
    }
  });

  it('after a rotation new data keys are wrapped under the new KEK at once; a sweep moves the rest and destroys the old KEK', async () => {
    const barrier = new Barrier(open());
    const before = barrier.sealBlock(plain(), 'l', 5);
    createNextKek(custody, 'kek');
    barrier.sealBlock(plain(), 'l', 70000); // epoch 1: a data key made after the rotation
    assert.deepEqual(readCensus(dir), { 'kek.1': 2, 'kek.2': 1 });
    const result = await new KekRotation(open()).sweep();
    assert.deepEqual(result, { rewrapped: 2, retired: ['kek.1'], left: 0 });
    assert.deepEqual(custody.listKeks(), ['kek.2']);
    assert.deepEqual(readCensus(dir), { 'kek.2': 3 });
    assert.equal(new Barrier(open()).openBlock(before, 'l', 5).length, 32, 'sealed before, opened after');
  });

  it('a sweep stopped half way (a crash) leaves both KEKs and data keys under each; the next sweep finishes', async () => {
    const keys = open();
    for (let epoch = 0; epoch < 10; epoch++) keys.blockKey('l', epoch);
    createNextKek(custody, 'kek');
    const paused = await new KekRotation(open(), undefined, { [PAUSE_AFTER_ENV]: '4' }).sweep();
    assert.deepEqual(paused, { rewrapped: 4, retired: [], left: 6 });
    assert.deepEqual(readCensus(dir), { 'kek.1': 6, 'kek.2': 4 });
    assert.deepEqual(custody.listKeks().sort(), ['kek.1', 'kek.2']);
    const restarted = open();
    for (let epoch = 0; epoch < 10; epoch++)
      assert.deepEqual(restarted.blockKey('l', epoch), keys.blockKey('l', epoch));
    assert.deepEqual((await new KekRotation(restarted).sweep()).retired, ['kek.1']);
    assert.deepEqual(readCensus(dir), { 'kek.2': 10 });
  });

  it('never destroys a KEK its directory did not use (another KME on the same token)', async () => {
    open().rowKey();
    custody.createKek('kek.7'); // made elsewhere: now current, and kek.1 is old
    custody.createKek('other.1');
    await new KekRotation(open()).sweep();
    assert.deepEqual(custody.listKeks().sort(), ['kek.7', 'other.1']);
  });

  it('refuses a token without the KEKs its data keys are wrapped under', () => {
    open().rowKey();
    assert.throws(() => open(new MemoryCustody()), /holds no KEK labelled kek\.N, but 1 data keys .* kek\.1/);
  });
});
