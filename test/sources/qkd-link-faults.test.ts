import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { describe, it } from 'node:test';
import { Prng } from '../../src/qkd/prng.js';
import type { QkdLink } from '../../src/sources/qkd-link.js';
import type { QkdOp } from '../../src/sources/qkd/wire.js';
import { qkdPair, qkdSettings } from '../helpers/qkd-pair.js';
import { predictXoshiro } from '../helpers/xoshiro-recovery.js';

const FAST = qkdSettings({ distanceKm: 5 }, { framePulses: 10_000_000 });
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
/** Blocks are compared by their hashes: key bytes never reach test output. */
const digestOf = (bytes: Uint8Array) => createHash('sha256').update(bytes).digest('hex');

/** Starts both ends after `afterSeq`; every block each end delivers, by number (as hashes). */
function collect(leader: QkdLink, follower: QkdLink, afterSeq: number | null) {
  const got = [new Map<number, string>(), new Map<number, string>()] as const;
  const twice: string[] = [];
  [leader, follower].forEach((end, i) =>
    end.start(afterSeq, async (blocks) => {
      for (const b of blocks) {
        if (got[i]!.has(b.seq)) twice.push(`${i ? 'follower' : 'leader'} delivered block ${b.seq} twice`);
        got[i]!.set(b.seq, digestOf(b.bytes));
      }
    }),
  );
  return { got, twice };
}

/** Waits for `done`; after `timeoutMs`, throws, or returns false when `soft`. */
async function until(what: string, done: () => boolean, timeoutMs = 120_000, soft = false): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (!done()) {
    if (Date.now() > deadline) {
      if (soft) return false;
      throw new Error(`timed out waiting for ${what}`);
    }
    await sleep(20);
  }
  return true;
}

describe('QKD link: restarts and lost messages', () => {
  it('a restarted link never makes the same key material again, at either end', async () => {
    const runs: Array<Map<number, string>> = [];
    let afterSeq: number | null = null;
    for (let run = 0; run < 3; run++) {
      // The same seed files each time, as a KME restarted (or killed and restarted) has.
      const { leader, follower } = qkdPair(FAST);
      const { got, twice } = collect(leader, follower, afterSeq);
      try {
        await until('blocks', () => got[0].size >= 1000 && got[1].size >= 1000);
      } finally {
        await Promise.all([leader.stop(), follower.stop()]);
      }
      assert.deepEqual(twice, []);
      for (const [seq, hash] of got[0]) assert.equal(got[1].get(seq), hash, `block ${seq} the same at both ends`);
      assert.ok(Math.min(...got[0].keys()) > (afterSeq ?? -1), 'numbers after the last run');
      runs.push(got[0], got[1]);
      afterSeq = Math.max(leader.newestSeq, follower.newestSeq);
    }
    const seen = new Map<string, number>();
    let repeated = 0;
    for (const [r, blocks] of runs.entries())
      for (const hash of blocks.values()) {
        const first = seen.get(hash);
        // The two ends of one run hold the same blocks (r and r ^ 1); any other match is a repeat.
        if (first !== undefined && first !== (r ^ 1)) repeated++;
        if (first === undefined) seen.set(hash, r);
      }
    assert.equal(repeated, 0, 'blocks of one run made again by a later one');
  });

  it('lost messages and answers at every step of a frame, and bad commits: every number names the same bytes at both ends', async () => {
    const { leader, follower } = qkdPair(FAST);
    const handle = follower.handle.bind(follower);
    type Step = QkdOp | 'cascade-first' | 'cascade-later';
    interface Fault {
      step: Step;
      lose?: 'message' | 'answer';
      /** Rewrites the commit: numbers from a stale view, overlapping ones, or another digest. */
      rewrite?: 'stale' | 'overlap' | 'digest';
      times: number;
      frame?: number;
    }
    const steps: Step[] = ['fibre', 'detections', 'sifting', 'cascade-first', 'cascade-later', 'verify', 'amplify'];
    const faults: Fault[] = [
      { step: 'commit', lose: 'answer', times: 1 },
      ...steps.flatMap((step) => [
        { step, lose: 'answer' as const, times: 1 },
        { step, lose: 'message' as const, times: 1 },
      ]),
      { step: 'commit', lose: 'message', times: 1 },
      // The resends' answers lost too.
      { step: 'commit', lose: 'answer', times: 3 },
      { step: 'commit', rewrite: 'stale', times: 1 },
      { step: 'commit', rewrite: 'overlap', times: 1 },
      { step: 'commit', rewrite: 'digest', times: 1 },
      // Every send's answer lost: the leader cannot know that Bob took the commit, and gives up.
      { step: 'commit', lose: 'answer', times: 5 },
    ];
    const planned = faults.length;
    const injected: string[] = [];
    const refusals: string[] = [];
    const cascades = new Map<number, number>();
    const faulted = new Set<number>();
    const answered = async (op: QkdOp, body: Record<string, unknown>) => {
      const answer = await handle(op, body);
      if (typeof answer['refused'] === 'string') refusals.push(answer['refused']);
      return answer;
    };
    follower.handle = async (op, message) => {
      let body = message as Record<string, unknown>;
      const frame = body['frame'] as number;
      let step: Step = op;
      if (op === 'cascade') {
        cascades.set(frame, (cascades.get(frame) ?? 0) + 1);
        step = cascades.get(frame) === 1 ? 'cascade-first' : 'cascade-later';
      }
      const fault = faults[0];
      // A fault's first message is of a frame not faulted yet; its resends (times > 1) of the same.
      if (!fault || fault.step !== step || (fault.frame ?? (faulted.has(frame) ? NaN : frame)) !== frame)
        return answered(op, body);
      fault.frame = frame;
      faulted.add(frame);
      if (--fault.times === 0) faults.shift();
      injected.push(`${step} ${fault.lose ?? fault.rewrite}`);
      if (fault.lose === 'message') throw new Error('message lost');
      if (fault.rewrite === 'stale') body = { ...body, after_seq: (body['after_seq'] as number) - 1 };
      if (fault.rewrite === 'overlap') body = { ...body, first_seq: body['after_seq'] };
      if (fault.rewrite === 'digest') body = { ...body, digest: Buffer.alloc(32) };
      const answer = await answered(op, body);
      if (fault.lose === 'answer') throw new Error('answer lost');
      return answer;
    };
    const { got, twice } = collect(leader, follower, null);
    let target = Infinity;
    let finished: boolean;
    try {
      // Soft: should the link stall, the blocks made until then are compared first.
      finished = await until(
        'the faults, then 1000 blocks more',
        () => {
          if (faults.length === 0 && target === Infinity) target = leader.newestSeq + 1000;
          return leader.newestSeq >= target && follower.newestSeq >= target;
        },
        120_000,
        true,
      );
    } finally {
      await Promise.all([leader.stop(), follower.stop()]);
    }
    const differ = [...got[0]].filter(([seq, hash]) => got[1].get(seq) !== hash).map(([seq]) => seq);
    assert.equal(
      differ.length,
      0,
      `${differ.length} blocks the leader delivered the follower holds otherwise or not (from ${differ[0]})`,
    );
    assert.deepEqual(twice, []);
    assert.ok(finished, `the link went on after the faults (${injected.length} injected)`);
    assert.equal(injected.length, planned + 2 + 4, 'every fault happened (with the resends)');
    // The stale and overlapping numbers were refused and renumbered, and so was the commit after the
    // one whose every answer was lost (the leader's view of Bob's numbers was stale then); the
    // commit with another digest was refused and discarded at both ends.
    assert.deepEqual(refusals.sort(), ['digest_mismatch', 'out_of_sequence', 'out_of_sequence', 'out_of_sequence']);
    for (const end of [leader, follower])
      assert.equal(end.info().stats!.discardReasons['commit_digest_mismatch'], 1, 'discarded at both ends');
    assert.ok(got[0].size >= 1000);
  });

  it('the seeds a frame publishes do not give away its verification and amplification seeds', async () => {
    // The attack works: a few outputs of one xoshiro128** stream give all that follow.
    const rng = new Prng([1, 2, 3, 4]);
    const drawn = Array.from({ length: 5 }, () => rng.u32());
    assert.deepEqual(
      predictXoshiro(drawn, 16),
      Array.from({ length: 16 }, () => rng.u32()),
    );

    // A frame's public seeds, as an eavesdropper on the classical channel reads them.
    const { leader, follower } = qkdPair(FAST);
    const handle = follower.handle.bind(follower);
    const seen = new Map<number, { sample?: number; shuffles?: number[]; tag?: Buffer; pa?: Buffer }>();
    let frame: ReturnType<(typeof seen)['get']>;
    follower.handle = async (op, message) => {
      const body = message as Record<string, unknown>;
      const f = seen.get(body['frame'] as number) ?? {};
      seen.set(body['frame'] as number, f);
      if (op === 'sifting') f.sample = body['sample_seed'] as number;
      if (op === 'cascade' && body['passes'])
        f.shuffles = (body['passes'] as Array<{ shuffle?: { seed: number[] } }>).flatMap((p) => p.shuffle?.seed ?? []);
      if (op === 'verify') f.tag = Buffer.from(body['seed'] as Uint8Array);
      if (op === 'amplify') {
        f.pa = Buffer.from(body['seed'] as Uint8Array);
        frame ??= f;
      }
      return handle(op, message);
    };
    collect(leader, follower, null);
    try {
      await until('a frame up to amplification', () => frame !== undefined);
    } finally {
      await Promise.all([leader.stop(), follower.stop()]);
    }
    const { sample, shuffles, tag, pa } = frame!;
    assert.ok(sample !== undefined && shuffles!.length >= 8 && tag && pa);
    const later = Buffer.concat([tag!, pa!]);
    const words = Array.from({ length: 16 }, (_, i) => later.readUInt32LE(4 * i));
    // The shuffles are one stream still (public, and only Cascade's): its state is recovered…
    assert.ok(predictXoshiro(shuffles!, 16), 'the shuffles are one xoshiro128** stream');
    // …and tells nothing of the seeds that follow, with or without the sampling seed before it.
    for (const published of [[sample!, ...shuffles!], shuffles!])
      assert.notDeepEqual(predictXoshiro(published, 16), words, 'tag and amplification seeds predicted');
  });
});
