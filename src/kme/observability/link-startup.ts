import { HEALTH_THRESHOLDS, type LinkStartPhase } from '../../domain/link-health.js';
import type { LinkPool } from '../link-pool.js';

/**
 * Where each link of this KME is in its start, for its health: `first-key` until it has delivered
 * a block since the KME started it (a QKD link: its first post-processed frame), then `filling`
 * while its pool fills for the first time, so that a new link does not look degraded for the
 * minutes its pool takes to reach the low mark. The first fill ends for good when the pool reaches
 * the mark, or when it is seen lower than before (keys are being taken from it): from then on, a
 * low pool is a degraded link.
 */
export class LinkStartup {
  readonly #fill = new Map<string, { highest: number; done: boolean }>();

  /** The phase of `pool`, given its own share now (`ownBlocks`). */
  phase(pool: LinkPool, ownBlocks: number): LinkStartPhase {
    let fill = this.#fill.get(pool.linkId);
    if (!fill) this.#fill.set(pool.linkId, (fill = { highest: ownBlocks, done: false }));
    if (!fill.done) {
      const low = ownBlocks < HEALTH_THRESHOLDS.lowPoolFill * pool.capacityBlocks;
      fill.done = !low || ownBlocks < fill.highest;
      fill.highest = Math.max(fill.highest, ownBlocks);
    }
    if (!pool.madeSinceStart) return 'first-key';
    return fill.done ? 'started' : 'filling';
  }
}
