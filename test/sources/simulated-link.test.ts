import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { describe, it } from 'node:test';
import { SimulatedLink, type SimulatedLinkOptions } from '../../src/sources/simulated-link.js';
import { describeKeySourceConformance } from './key-source-conformance.js';

const options = (over: Partial<SimulatedLinkOptions> = {}): SimulatedLinkOptions => ({
  linkId: 'link-a-b',
  seed: Buffer.alloc(32, 7),
  rateBps: 256 * 400, // 400 blocks a second
  blockBits: 256,
  epochMs: Date.now(),
  historyBlocks: 1000,
  tickMs: 10,
  ...over,
});

describeKeySourceConformance('simulated link', () => {
  const opts = options({ seed: randomBytes(32), epochMs: Date.now() - 50 });
  const ends = [new SimulatedLink(opts), new SimulatedLink(opts)] as const;
  return {
    ends,
    waitFor: async (seq) => {
      while (ends[0].producedUpTo() < seq) await new Promise((r) => setTimeout(r, 10));
    },
  };
});

describe('SimulatedLink', () => {
  it('produces blocks at its rate', () => {
    let now = 1_000_000;
    const link = new SimulatedLink(options({ epochMs: now, now: () => now }));
    assert.equal(link.producedUpTo(), -1);
    now += 1000; // 400 blocks
    assert.equal(link.producedUpTo(), 399);
  });

  it('offers a returning end only its recent history', async () => {
    let now = 0;
    const link = new SimulatedLink(options({ epochMs: 0, now: () => now, historyBlocks: 100 }));
    now = 10_000; // 4000 blocks produced
    const seqs: number[] = [];
    link.start(5, async (blocks) => void seqs.push(...blocks.map((b) => b.seq)));
    await new Promise((r) => setTimeout(r, 50));
    await link.stop();
    assert.equal(seqs[0], 3900, 'blocks older than the history are gone');
    assert.equal(seqs.at(-1), 3999);
  });

  it('gives other material for another seed or link, and one block equals its batch twin', () => {
    const a = new SimulatedLink(options());
    assert.ok(!a.block(5).equals(new SimulatedLink(options({ seed: Buffer.alloc(32, 8) })).block(5)));
    assert.ok(!a.block(5).equals(new SimulatedLink(options({ linkId: 'other' })).block(5)));
    assert.ok(a.block(5).equals(a.blocks(3, 9)[2]!));
    assert.ok(!a.block(5).equals(a.block(6)));
  });

  it('refuses unsound settings', () => {
    assert.throws(() => new SimulatedLink(options({ blockBits: 100 })), /multiple of 128/);
    assert.throws(() => new SimulatedLink(options({ rateBps: 0 })), /positive/);
  });
});
