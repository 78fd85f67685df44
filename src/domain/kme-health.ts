import type { LinkHealth } from './link-health.js';

/** What a KME's health is made of: facts the caller gathered (pure: no I/O here). */
export interface KmeHealthInput {
  readonly links: ReadonlyArray<{
    readonly link_ID: string;
    readonly health: LinkHealth;
    readonly health_reasons: string[];
  }>;
  readonly peers: ReadonlyArray<{
    readonly peer: string;
    readonly lastOkAt: number | null;
    readonly lastFailureAt: number | null;
    readonly lastFailure: string | null;
  }>;
  readonly crls?: ReadonlyArray<{ readonly api: string; readonly state: string }>;
}

export interface HealthCheck {
  readonly name: string;
  readonly ok: boolean;
  readonly detail: string;
}

/**
 * `ok`: everything usable. `degraded`: keys can still be delivered, but something needs a look (a
 * link down among others, a peer whose last exchange failed).
 * `down`: no key can be delivered (the store unusable, every link down, an expired revocation list
 * that fails every handshake).
 */
export type KmeHealthStatus = 'ok' | 'degraded' | 'down';

export function kmeHealth(input: KmeHealthInput): { status: KmeHealthStatus; checks: HealthCheck[] } {
  const checks: HealthCheck[] = [{ name: 'store', ok: true, detail: 'readable' }];
  for (const l of input.links) {
    checks.push({
      name: `link ${l.link_ID}`,
      ok: l.health !== 'down',
      detail: [l.health, ...l.health_reasons].join(': '),
    });
  }
  for (const p of input.peers) {
    const failing = p.lastFailureAt !== null && (p.lastOkAt === null || p.lastFailureAt > p.lastOkAt);
    checks.push({
      name: `peer ${p.peer}`,
      ok: !failing,
      detail: failing
        ? `last exchange failed: ${p.lastFailure ?? 'unknown'}`
        : p.lastOkAt
          ? 'last exchange ok'
          : 'no exchange yet',
    });
  }
  const blocking = (input.crls ?? []).filter((c) => c.state === 'expired' || c.state === 'unreadable');
  for (const c of input.crls ?? []) checks.push({ name: `crl ${c.api}`, ok: !blocking.includes(c), detail: c.state });
  const allLinksDown = input.links.length > 0 && input.links.every((l) => l.health === 'down');
  const status = allLinksDown || blocking.length > 0 ? 'down' : checks.every((c) => c.ok) ? 'ok' : 'degraded';
  return { status, checks };
}

/** The health of a KME whose store could not be read: nothing can be delivered. */
export const storeDown = (err: string) => ({
  status: 'down' as const,
  checks: [{ name: 'store', ok: false, detail: err }],
});
