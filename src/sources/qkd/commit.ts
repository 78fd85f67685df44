import { createHmac } from 'node:crypto';

/*
 * The last step of a frame: its secret key gets block numbers at both ends. The leader proposes
 * them as (after_seq, first_seq): after_seq is the follower's last block number as the leader
 * believes it, first_seq the frame's first block (after both ends' last). The follower takes the
 * commit only if after_seq is its last block number indeed and the frame's digest under those
 * numbers is its own; anything else is refused with its last block number, and never half-applied.
 * The leader serves the blocks only once the follower's answer shows the same digest. A commit
 * whose answer was lost is sent again unchanged and answered the same (the follower remembers its
 * recent commits), so an applied commit is never renumbered.
 */

/** The follower's answer to a commit. */
export type CommitAnswer =
  | { committed: true; last_seq: number; digest: Buffer }
  | { committed: false; refused: 'out_of_sequence' | 'already_committed'; last_seq: number }
  | { committed: false; refused: 'digest_mismatch' };

/**
 * A frame's secret key bound to its link, frame and block numbers: HMAC-SHA256 keyed by the key
 * itself, so that the public digest says nothing of the key (beyond whether the two ends' agree).
 */
export function commitDigest(secret: Uint8Array, linkId: string, frame: number, firstSeq: number): Buffer {
  return createHmac('sha256', secret)
    .update(`qks/qkd/commit\0${linkId}\0${frame}\0${firstSeq}\0${secret.length}`)
    .digest();
}

/** Commits the follower remembers, to answer a resent one the same. */
export const REMEMBERED_COMMITS = 64;
/** Sends of one commit message before its outcome is given up as unknown. */
export const COMMIT_SENDS = 5;
/** Renumberings of one frame after refusals (out of sequence) before it is discarded. */
export const COMMIT_RENUMBERINGS = 3;
