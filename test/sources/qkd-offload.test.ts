import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { newBits } from '../../src/qkd/bits.js';
import { responderViews } from '../../src/qkd/cascade.js';
import { planPasses } from '../../src/qkd/cascade-plan.js';
import { Prng } from '../../src/qkd/prng.js';
import { secretKey } from '../../src/sources/qkd/frame-hashes.js';
import { amplifyOffThread, siftOffThread, viewsOffThread } from '../../src/sources/qkd/offload.js';
import { siftAtAlice } from '../../src/sources/qkd/alice-sifting.js';
import { Transmitter } from '../../src/physics/transmitter.js';
import * as wire from '../../src/sources/qkd/wire.js';
import { qkdSettings } from '../helpers/qkd-pair.js';
import { StageClock } from '../../src/sources/qkd/stages.js';

/** A random n-bit key, in its own buffer or as a view into a larger one. */
function key(n: number, seed: number, inLarger = false): Uint32Array {
  const rng = new Prng([seed, 5, 6, 7]);
  const words = rng.bits(n);
  if (!inLarger) return words;
  const larger = new Uint32Array(words.length + 8);
  larger.set(words, 4);
  return larger.subarray(4, 4 + words.length);
}

describe('QKD steps on the worker thread', () => {
  it('privacy amplification there gives the key computed here; the key moves (or is wiped), never stays', async () => {
    const clock = new StageClock();
    const seed = Buffer.alloc(32, 3);
    const n = 100_003;
    const own = key(n, 1);
    const expected = secretKey(own.slice(), n, seed, 20_000);
    assert.deepEqual(await amplifyOffThread(clock, own, n, seed, 20_000), expected);
    assert.equal(own.length, 0, 'the array was moved to the worker (detached here)');
    const view = key(n, 1, true);
    const larger = new Uint32Array(view.buffer);
    assert.deepEqual(await amplifyOffThread(clock, view, n, seed, 20_000), expected);
    assert.ok(view.length > 0 && larger.every((w) => w === 0), 'a view into a larger buffer is copied, then wiped');
    assert.ok(clock.ms.amplification > 0, 'its time is counted');
  });

  it("Alice's Cascade views made there equal those made here, and her key stays hers", async () => {
    const n = 50_001;
    const k = key(n, 2);
    const before = k.slice();
    const passes = planPasses('yanetal', 0.03, n, new Prng([1, 2, 3, 4]));
    const views = await viewsOffThread(new StageClock(), k, n, passes);
    assert.deepEqual(views, responderViews(k, n, passes));
    assert.deepEqual(k, before);
  });

  it("Alice's sifting there gives what it gives here, from a field inside a larger message", async () => {
    const clock = new StageClock();
    const { physics } = qkdSettings({ distanceKm: 5 });
    const seed = Buffer.alloc(32, 0xa1);
    const tx = new Transmitter(physics, seed);
    const N = 2_000_000;
    const clicks = tx.emit(4, N).indices;
    const m = clicks.length;
    const rng = new Prng([9, 9, 9, 9]);
    const bobBases = rng.fill(newBits(m));
    // Bob's announcement, inside a larger message buffer as it arrives.
    const encoded = wire.encodeIndices(clicks);
    const message = Buffer.concat([Buffer.alloc(13, 1), encoded, Buffer.alloc(7, 2)]);
    const field = message.subarray(13, 13 + encoded.length);
    const o = { m, N, sampleSeed: 5, fraction: 0.05 };
    const there = await siftOffThread(clock, { physics, seed }, 4, field, bobBases, o);
    const here = siftAtAlice(tx, 4, field, bobBases, o);
    assert.equal(message.length, 20 + encoded.length, 'the message buffer stays whole');
    assert.deepEqual(there.key, here.key);
    assert.deepEqual(there.disclosed, here.disclosed);
    assert.deepEqual(Buffer.from(there.classes), here.classes);
    assert.deepEqual(seed, Buffer.alloc(32, 0xa1), "Alice's seed is hers still");
    await assert.rejects(siftOffThread(clock, { physics, seed }, 4, field.subarray(1), bobBases, o), /indices/);
  });
});
