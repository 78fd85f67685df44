import { HEALTH_THRESHOLDS, type LinkStartPhase } from '../../domain/link-health.js';
import type { LinkPool } from '../link-pool.js';

/**
 * Where each link of this KME is in its start, for its health: `first-key` until it has delivered
 * a block since the KME started it (a QKD link: its first post-processed frame), then `filling`
 * while its pool fills for the first time, so that a new link does not look degraded for the
 * minutes its pool takes to reach the low mark. The first fill ends for good when the pool reaches
 * the mark, or when it is seen lower than before (keys are being taken from it): from then on, a
 * low pool is a degraded link. Both phases are bounded, so that a link that never makes key, or
 * whose keys are taken while nobody watched the pool fall, is not `starting` for ever.
 */
export class LinkStartup {
  readonly #fill = new Map<string, { since: number; highest: number; done: boolean }>();

  /** The phase of `pool`, given its own share now (`ownBlocks`). */
  phase(pool: LinkPool, ownBlocks: number, now = Date.now()): LinkStartPhase {
    let fill = this.#fill.get(pool.linkId);
    if (!fill) this.#fill.set(pool.linkId, (fill = { since: now, highest: ownBlocks, done: false }));
    if (!fill.done) {
      const low = ownBlocks < HEALTH_THRESHOLDS.lowPoolFill * pool.capacityBlocks;
      fill.done = !low || ownBlocks < fill.highest || now - fill.since > STARTUP_LIMITS_MS.filling;
      fill.highest = Math.max(fill.highest, ownBlocks);
    }
    if (!pool.madeSinceStart) return now - fill.since > STARTUP_LIMITS_MS.firstKey ? 'started' : 'first-key';
    return fill.done ? 'started' : 'filling';
  }
}

/** How long each phase may last, from when the link was first looked at (a QKD frame takes seconds). */
export const STARTUP_LIMITS_MS = { firstKey: 60_000, filling: 10 * 60_000 } as const;
