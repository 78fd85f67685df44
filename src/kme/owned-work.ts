import { randomUUID } from 'node:crypto';
import type { Logger } from 'pino';
import { keepsLeases, type LeaseStore } from '../stores/leases.js';
import { ConfigError, type KmeConfig } from './config.js';
import type { LinkPool } from './link-pool.js';
import type { PeerClient } from './peer-client.js';
import { RequestOwner } from './request-owner.js';
import { SingleOwner } from './single-owner.js';

/** How often a follower reads what a link's owner ingested. */
const FOLLOW_INTERVAL_MS = 100;

export interface ReplicaSettings {
  /** This replica's name, e.g. `r1`: unique among the KME's replicas. */
  readonly name: string;
  /** How long a lease lasts unrenewed: the longest a dead owner's work waits for another replica. */
  readonly leaseMs: number;
  readonly leases: LeaseStore;
}

export interface OwnedWork {
  /** The work this replica does now: `link:<id>` and `outbox` (every piece when not a replica). */
  owned(): string[];
  /**
   * Answers a message for the follower end of a QKD link (qkdLinkHandlers): at a replica, as the
   * replica that runs that end (RequestOwner); in a single process, at once.
   */
  serve<T>(linkId: string, answer: () => Promise<T>): Promise<T>;
  stop(): Promise<void>;
}

const serveAtOnce = <T>(_linkId: string, answer: () => Promise<T>): Promise<T> => answer();

/**
 * Starts the work that must have exactly one owner: ingesting each link's material, and draining
 * the cancel outbox. A single process owns all of it. Replicas of one KME each run it only while
 * they hold its lease; the others follow the shared store, so any replica serves any request.
 * The links in `followsRequests` (QKD links this KME follows) are not competed for: the replica
 * that the leader's messages reach takes the lease and runs the link (RequestOwner).
 */
export async function startOwnedWork(
  kmeId: string,
  pools: readonly LinkPool[],
  peers: PeerClient,
  log: Logger,
  replica?: ReplicaSettings,
  followsRequests: ReadonlySet<string> = new Set(),
): Promise<OwnedWork> {
  const names = [...pools.map((p) => `link:${p.linkId}`), 'outbox'];
  if (!replica) {
    const started: LinkPool[] = [];
    try {
      for (const p of pools) {
        started.push(p);
        await p.start();
      }
    } catch (err) {
      await Promise.all(started.map((p) => p.stop()));
      throw err;
    }
    peers.start();
    return {
      owned: () => names,
      serve: serveAtOnce,
      stop: () => Promise.all(pools.map((p) => p.stop())).then(() => undefined),
    };
  }
  // A holder name new with each run: a restarted replica competes afresh for what it held.
  const holder = `${replica.name}:${randomUUID()}`;
  const owners = new Map<string, SingleOwner>();
  const byRequest = new Map<string, RequestOwner>();
  const settings = (work: string, gain: () => Promise<void> | void, lose: () => Promise<void> | void) => ({
    name: `${kmeId}/${work}`,
    holder,
    leases: replica.leases,
    ttlMs: replica.leaseMs,
    gain: () => (log.info({ work, replica: replica.name }, 'this replica took the work over'), gain()),
    lose: () => (log.warn({ work, replica: replica.name }, 'this replica gave the work up'), lose()),
    onError: (err: Error) => log.warn({ work, err: err.message }, 'lease renewal failed'),
  });
  const own = (work: string, gain: () => Promise<void> | void, lose: () => Promise<void> | void) =>
    owners.set(work, new SingleOwner(settings(work, gain, lose)));
  for (const p of pools) {
    await p.follow(FOLLOW_INTERVAL_MS);
    const work = `link:${p.linkId}`;
    const [gain, lose] = [() => p.resume(), () => p.pause()];
    if (followsRequests.has(p.linkId)) byRequest.set(p.linkId, new RequestOwner(settings(work, gain, lose)));
    else own(work, gain, lose);
  }
  own(
    'outbox',
    () => peers.start(),
    () => peers.pause(),
  );
  await Promise.all([...owners.values()].map((o) => o.start()));
  return {
    owned: () => [
      ...[...byRequest].filter(([, o]) => o.owning).map(([id]) => `link:${id}`),
      ...[...owners].filter(([, o]) => o.owning).map(([work]) => work),
    ],
    serve: (linkId, answer) => {
      const owner = byRequest.get(linkId);
      return owner ? owner.serve(answer) : answer();
    },
    stop: async () => {
      await Promise.all([...owners.values(), ...byRequest.values()].map((o) => o.stop()));
      await Promise.all(pools.map((p) => p.stop()));
    },
  };
}

/** This KME's replica settings, when it is one of several replicas; refuses a store without leases. */
export function replicaOf(cfg: Pick<KmeConfig, 'replica' | 'store'>, store: object): ReplicaSettings | undefined {
  if (!cfg.replica) return undefined;
  if (!keepsLeases(store)) {
    throw new ConfigError(`replica: the ${cfg.store} store keeps no leases; replicas need store "postgres"`);
  }
  return { name: cfg.replica.name, leaseMs: cfg.replica.lease_ms, leases: store };
}
