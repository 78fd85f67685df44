/**
 * How a QKD link looks to an operator: healthy, degraded (high QBER, a pool running low) or down.
 * Pure: the caller passes the numbers.
 */
export type LinkHealth = 'healthy' | 'degraded' | 'down';

export interface LinkHealthInput {
  /** The key source's state, or `unreachable` when the KME itself did not answer. */
  readonly state: string;
  /** Secret key made in the last sampling window, bit/s. */
  readonly rateBps: number;
  /** Quantum bit error rate when the link measures it, else null. */
  readonly qber: number | null;
  /** This end's share of the pool, as a fraction of its capacity. */
  readonly poolFill: number;
}

export const HEALTH_THRESHOLDS = {
  /** BB84 yields no key above about 11 %; warn well before. */
  degradedQber: 0.06,
  /** Below this fill a burst of requests can empty the pool. */
  lowPoolFill: 0.1,
} as const;

export function linkHealth(link: LinkHealthInput): { health: LinkHealth; reasons: string[] } {
  if (link.state !== 'running') return { health: 'down', reasons: [`source ${link.state}`] };
  if (link.rateBps <= 0) return { health: 'down', reasons: ['no key made recently'] };
  const reasons: string[] = [];
  if (link.qber !== null && link.qber >= HEALTH_THRESHOLDS.degradedQber) {
    reasons.push(`QBER ${(link.qber * 100).toFixed(1)} %`);
  }
  if (link.poolFill < HEALTH_THRESHOLDS.lowPoolFill) reasons.push(`pool ${(link.poolFill * 100).toFixed(0)} % full`);
  return { health: reasons.length > 0 ? 'degraded' : 'healthy', reasons };
}
