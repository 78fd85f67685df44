import { badRequest } from '../domain/errors.js';
import type { LinkPool } from './link-pool.js';

type Take<T> = { readonly ok: true } & T;
type Refused = {
  readonly ok: false;
  readonly missingSeqs: readonly number[];
  readonly existingKeyIds: readonly string[];
};

/**
 * Takes the blocks a peer named (a reservation's or a relay's), and tries once more when they
 * have not reached this end of the link yet: the peer may have seen them first, and they are on
 * their way. A refusal is a 400 that names the known key IDs or the missing blocks.
 */
export async function takePeerBlocks<T>(pool: LinkPool, waitMs: number, take: () => Promise<Take<T> | Refused>) {
  let result = await take();
  if (!result.ok && result.existingKeyIds.length === 0 && result.missingSeqs.every((s) => s > pool.latestSeq)) {
    // A loop: a spread of 131,072 numbers into Math.max overflows the stack.
    let newest = -1;
    for (const seq of result.missingSeqs) if (seq > newest) newest = seq;
    if (await pool.waitForSeq(newest, waitMs)) result = await take();
  }
  if (!result.ok) {
    throw badRequest(
      result.existingKeyIds.length > 0
        ? `key IDs already known: ${result.existingKeyIds.join(', ')}`
        : `blocks not available here: ${result.missingSeqs.slice(0, 8).join(', ')}`,
    );
  }
  return result;
}
