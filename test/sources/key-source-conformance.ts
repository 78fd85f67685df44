import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { KeySource, SourceBlock } from '../../src/sources/key-source.js';

export interface SourcePair {
  /** The two ends of one link. */
  readonly ends: readonly [KeySource, KeySource];
  /** Resolves when the link has produced at least `seq`. */
  waitFor(seq: number): Promise<void>;
}

/** Collects what a source delivers, as a KME's pool would. */
function collect(source: KeySource, afterSeq: number | null) {
  const blocks: SourceBlock[] = [];
  const lastSeqs: number[] = [];
  source.start(afterSeq, async (batch, lastSeq) => {
    blocks.push(...batch.map((b) => ({ seq: b.seq, bytes: Buffer.from(b.bytes) })));
    lastSeqs.push(lastSeq);
  });
  return { blocks, lastSeqs };
}

/** The contract every key source must keep; run once per kind of source. */
export function describeKeySourceConformance(name: string, createPair: () => SourcePair): void {
  describe(`KeySource conformance: ${name}`, () => {
    it('delivers the same bytes at both ends, in order, without gaps', async () => {
      const pair = createPair();
      const a = collect(pair.ends[0], null);
      const b = collect(pair.ends[1], null);
      await pair.waitFor(40);
      await new Promise((r) => setTimeout(r, 100));
      await Promise.all(pair.ends.map((e) => e.stop()));
      const first = Math.max(a.blocks[0]!.seq, b.blocks[0]!.seq);
      const last = Math.min(a.blocks.at(-1)!.seq, b.blocks.at(-1)!.seq);
      assert.ok(last - first >= 20, 'enough blocks to compare');
      for (const got of [a, b]) {
        got.blocks.forEach((blk, i) => i > 0 && assert.equal(blk.seq, got.blocks[i - 1]!.seq + 1));
        assert.equal(got.lastSeqs.at(-1), got.blocks.at(-1)!.seq, 'lastSeq is the last block delivered');
      }
      const bySeq = new Map(b.blocks.map((blk) => [blk.seq, blk.bytes]));
      for (const blk of a.blocks.filter((x) => x.seq >= first && x.seq <= last)) {
        assert.ok(blk.bytes.equals(bySeq.get(blk.seq)!), `block ${blk.seq} is identical at both ends`);
        assert.equal(blk.bytes.length, pair.ends[0].blockBits / 8);
      }
      assert.equal(new Set(a.blocks.map((x) => x.bytes.toString('hex'))).size, a.blocks.length, 'blocks differ');
    });

    it('resumes after the block it is told, and stops when asked', async () => {
      const pair = createPair();
      await pair.waitFor(30);
      const got = collect(pair.ends[0], 20);
      await new Promise((r) => setTimeout(r, 150));
      await pair.ends[0].stop();
      assert.equal(got.blocks[0]!.seq, 21);
      const count = got.blocks.length;
      await new Promise((r) => setTimeout(r, 150));
      assert.equal(got.blocks.length, count, 'nothing after stop');
      assert.equal(pair.ends[0].info().state, 'stopped');
    });

    it('describes itself', () => {
      const info = createPair().ends[0].info();
      assert.ok(info.kind && info.protocol && info.description && info.linkId);
      assert.ok(info.blockBits > 0);
      // A source that measures its link has no rate before its first frame, only a labelled expectation.
      if (info.stats) assert.ok(info.rateBps === null && info.expectedRateBps! > 0);
      else assert.ok(info.rateBps! > 0);
    });
  });
}
