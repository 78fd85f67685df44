/**
 * How a QKD link looks to an operator: starting (no key made yet since its KME started, or its
 * pool filling for the first time), healthy, degraded (high QBER, a pool running low) or down.
 * Pure: the caller passes the numbers.
 */
export type LinkHealth = 'healthy' | 'starting' | 'degraded' | 'down';

/** Where a link is in its start: `first-key`: nothing made yet; `filling`: its pool fills for the first time. */
export type LinkStartPhase = 'first-key' | 'filling' | 'started';

export interface LinkHealthInput {
  /** The key source's state, or `unreachable` when the KME itself did not answer. */
  readonly state: string;
  /** Secret key made in the last sampling window, bit/s. */
  readonly rateBps: number;
  /** Quantum bit error rate when the link measures it, else null. */
  readonly qber: number | null;
  /** This end's share of the pool, as a fraction of its capacity. */
  readonly poolFill: number;
  /** Default `started`. */
  readonly phase?: LinkStartPhase;
  /** What the link makes key in, for the reason shown before the first: `frame` (a link that measures itself) or `block`. */
  readonly unit?: 'frame' | 'block';
}

export const HEALTH_THRESHOLDS = {
  /** BB84 yields no key above about 11 %; warn well before. */
  degradedQber: 0.06,
  /** Below this fill a burst of requests can empty the pool. */
  lowPoolFill: 0.1,
} as const;

const percent = (fill: number) => `${(fill * 100).toFixed(0)} %`;

export function linkHealth(link: LinkHealthInput): { health: LinkHealth; reasons: string[] } {
  const phase = link.phase ?? 'started';
  if (link.state === 'starting') return { health: 'starting', reasons: ['source starting'] };
  if (link.state !== 'running') return { health: 'down', reasons: [`source ${link.state}`] };
  if (phase === 'first-key') return { health: 'starting', reasons: [`waiting for the first ${link.unit ?? 'block'}`] };
  if (link.rateBps <= 0) return { health: 'down', reasons: ['no key made recently'] };
  const reasons: string[] = [];
  if (link.qber !== null && link.qber >= HEALTH_THRESHOLDS.degradedQber) {
    reasons.push(`QBER ${(link.qber * 100).toFixed(1)} %`);
  }
  if (phase === 'filling' && reasons.length === 0) {
    return { health: 'starting', reasons: [`pool filling: ${percent(link.poolFill)} full`] };
  }
  if (phase !== 'filling' && link.poolFill < HEALTH_THRESHOLDS.lowPoolFill) {
    reasons.push(`pool ${percent(link.poolFill)} full`);
  }
  return { health: reasons.length > 0 ? 'degraded' : 'healthy', reasons };
}
