/**
 * The `qkd_applications` of the ETSI GS QKD 015 view (docs/sdn.md): every SAE pair (or master and
 * slaves) this KME handed keys to lately, and the applications a controller registered here.
 * Pure: no I/O, no clock.
 */

/** One delivery from the KME's delivery log (never key IDs or bytes). */
export interface DeliveryInput {
  readonly at: number;
  readonly sae: string;
  readonly role: 'master' | 'slave';
  readonly peers: readonly string[];
  readonly number: number;
  readonly sizeBits: number;
}

/** The configuration leaves of a qkd_app, as a controller writes them (validated: node-schema.ts). */
export interface AppConfig {
  app_id: string;
  app_type?: string;
  server_app_id?: string;
  client_app_id?: string[];
  app_priority?: number;
  expiration_time?: string;
  app_qos?: Record<string, number | boolean>;
  backing_qkdl_id?: string[];
  local_qkdn_id?: string;
  remote_qkdn_id?: string;
}

/** An application a controller registered: what it wrote, and when (ms since the epoch). */
export interface RegisteredApp {
  readonly config: AppConfig;
  readonly createdAt: number;
}

export interface AppStatistic {
  start_time: string;
  end_time: string;
  consumed_bits: number;
}

export interface QkdApp extends AppConfig {
  app_status: string;
  creation_time?: string;
  app_statistics: { statistics: AppStatistic[] };
}

export interface AppsInput {
  readonly kmeId: string;
  readonly me: string;
  readonly now: number;
  readonly deliveries: readonly DeliveryInput[];
  readonly registered: readonly RegisteredApp[];
  readonly kmeOfSae: (sae: string) => string | undefined;
  /** The links (qkdl_id) that carry keys between this KME and another. */
  readonly backingOf: (remoteKme: string) => string[];
  readonly nodeOf: (kmeId: string) => string;
  readonly pairId: (server: string, clients: readonly string[]) => string;
  readonly rateWindowMs: number;
}

/** Statistics come per period of this length, aligned to the epoch. */
export const STATISTICS_PERIOD_MS = 60_000;

interface Usage {
  readonly server: string;
  readonly clients: string[];
  readonly uses: Array<{ at: number; bits: number }>;
}

const TYPES = 'etsi-qkd-node-types';
const iso = (ms: number) => new Date(ms).toISOString();
const pairKey = (server: string, clients: readonly string[]) => `${server}>${[...clients].sort().join(',')}`;
const clamp32 = (n: number) => Math.min(4_294_967_295, Math.max(0, Math.round(n)));

/** Each pair's deliveries: at the master's KME from the master's record, elsewhere from the slave's. */
function usages(a: AppsInput): Map<string, Usage> {
  const out = new Map<string, Usage>();
  for (const d of a.deliveries) {
    const server = d.role === 'master' ? d.sae : d.peers[0];
    if (!server) continue;
    // A pair served wholly here is recorded twice: once for its master, once for its slave.
    if (d.role === 'slave' && a.kmeOfSae(server) === a.kmeId) continue;
    const clients = d.role === 'master' ? [...d.peers] : [d.sae];
    const key = pairKey(server, clients);
    let usage = out.get(key);
    if (!usage) out.set(key, (usage = { server, clients: [...clients].sort(), uses: [] }));
    usage.uses.push({ at: d.at, bits: d.number * d.sizeBits });
  }
  return out;
}

function statistics(uses: Usage['uses']): AppStatistic[] {
  const periods = new Map<number, number>();
  for (const u of uses) {
    const start = Math.floor(u.at / STATISTICS_PERIOD_MS) * STATISTICS_PERIOD_MS;
    periods.set(start, (periods.get(start) ?? 0) + u.bits);
  }
  return [...periods]
    .sort(([x], [y]) => x - y)
    .map(([start, bits]) => ({
      start_time: iso(start),
      end_time: iso(start + STATISTICS_PERIOD_MS),
      consumed_bits: clamp32(bits),
    }));
}

/** The KME at the other end of an application, seen from here (this KME for a pair served here). */
function remoteKmeOf(a: AppsInput, server: string | undefined, clients: readonly string[]): string | undefined {
  const ends = [server, ...clients].filter((s): s is string => !!s).map((s) => a.kmeOfSae(s));
  return ends.find((k) => k !== undefined && k !== a.kmeId) ?? (ends.includes(a.kmeId) ? a.kmeId : undefined);
}

/** The applications, registered ones first, each with its recent consumption (bit/s). */
export function buildApps(a: AppsInput): Array<{ app: QkdApp; recentBps: number }> {
  const used = usages(a);
  const recentBps = (u: Usage | undefined) =>
    ((u?.uses ?? []).filter((x) => a.now - x.at <= a.rateWindowMs).reduce((s, x) => s + x.bits, 0) * 1000) /
    a.rateWindowMs;
  const linksTo = (remote: string | undefined) => (remote && remote !== a.kmeId ? a.backingOf(remote) : []);

  const registered = a.registered.map(({ config, createdAt }) => {
    const key = config.server_app_id ? pairKey(config.server_app_id, config.client_app_id ?? []) : undefined;
    const usage = key ? used.get(key) : undefined;
    if (key) used.delete(key);
    const remote = remoteKmeOf(a, config.server_app_id, config.client_app_id ?? []);
    const expired = config.expiration_time !== undefined && Date.parse(config.expiration_time) <= a.now;
    const backing = config.backing_qkdl_id ?? linksTo(remote);
    const app: QkdApp = {
      ...config,
      app_status: `${TYPES}:${expired ? 'OUT-OF-TIME' : 'ON'}`,
      creation_time: iso(createdAt),
      app_statistics: { statistics: statistics(usage?.uses ?? []) },
      ...(backing.length > 0 ? { backing_qkdl_id: backing } : {}),
      local_qkdn_id: a.me,
      ...(config.remote_qkdn_id || !remote ? {} : { remote_qkdn_id: a.nodeOf(remote) }),
    };
    return { app, recentBps: recentBps(usage) };
  });

  const taken = new Set(a.registered.map((r) => r.config.app_id));
  const unregistered = [...used.values()].filter((u) => !taken.has(a.pairId(u.server, u.clients)));
  const derived = unregistered.map((u) => {
    const remote = remoteKmeOf(a, u.server, u.clients);
    const backing = linksTo(remote);
    const app: QkdApp = {
      app_id: a.pairId(u.server, u.clients),
      app_status: `${TYPES}:ON`,
      app_type: `${TYPES}:CLIENT`,
      server_app_id: u.server,
      client_app_id: u.clients,
      creation_time: iso(Math.min(...u.uses.map((x) => x.at))),
      app_statistics: { statistics: statistics(u.uses) },
      ...(backing.length > 0 ? { backing_qkdl_id: backing } : {}),
      local_qkdn_id: a.me,
      ...(remote ? { remote_qkdn_id: a.nodeOf(remote) } : {}),
    };
    return { app, recentBps: recentBps(u) };
  });
  return [...registered, ...derived];
}
