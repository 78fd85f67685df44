import { randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { AddressInfo } from 'node:net';
import { pino, type Logger } from 'pino';
import type { FastifyInstance } from 'fastify';
import { openConfiguredBarrier } from './open-barrier.js';
import type { KeyStore } from '../stores/key-store.js';
import { SqliteKeyStore } from '../stores/sqlite-store.js';
import { QkdLink } from '../sources/qkd-link.js';
import { limitsOf, type KmeConfig } from './config.js';
import { watchSaeList } from './config-watch.js';
import { buildPeerApi } from './http/peer-api.js';
import { createSource } from './link-sources.js';
import { buildSaeApi } from './http/sae-api.js';
import { KeyService } from './key-service.js';
import { LinkPool } from './link-pool.js';
import { replicaOf, startOwnedWork } from './owned-work.js';
import { PeerClient } from './peer-client.js';
import { keySyncHandlers } from './peer-messages-service.js';
import { LINK_STATE_CHANNEL, LinkStateService } from './link-state-service.js';
import { PeerStreams } from './peer-stream/client.js';
import { attachPeerStream } from './peer-stream/server.js';
import { qkdLinkHandlers } from './qkd-link-channel.js';
import { PreferenceService } from './preference-service.js';
import { readTls, reloadOnCrlChange } from './tls-files.js';
import { CrlUpkeep } from './crl-upkeep.js';
import { checkConfigFiles } from './config-files.js';
import { lockDataDir } from './data-dir-lock.js';
import { openStore } from './open-store.js';
import { listenAs } from './listen.js';
import { startSkip } from './skip-listener.js';
import { Teardown } from './teardown.js';
import { SaeAuthenticator } from '../auth/sae-authenticator.js';
import { TokenVerifier } from '../auth/token-verifier.js';
import { AccessPolicy } from '../domain/access-policy.js';
import { SaeTable } from '../domain/sae-directory.js';
import { PEER_TLS_OPTIONS } from './http/peer-api.js';
import { SAE_TLS_OPTIONS } from './http/sae-api.js';
import type { Server as TlsServer } from 'node:tls';
import { IntegrationBoard } from './observability/integration-board.js';
import { LinkHistory } from './observability/link-history.js';
import { LinkStartup } from './observability/link-startup.js';
import { KmeMetrics } from './observability/metrics.js';
import { buildOverview, type KmeOverview } from './observability/overview.js';
import { PeerSyncTracker } from './observability/peer-sync.js';
import { InstalledRoutes } from './installed-routes.js';
import { qksVersion, type SdnSources } from './http/restconf-routes.js';
import { AppRegistry } from '../sdn/app-registry.js';

export interface RunningKme {
  readonly id: string;
  /** Where SAEs reach the ETSI GS QKD 014 API. */
  readonly saeUrl: string;
  /** Where peer KMEs reach the KME-to-KME channel. */
  readonly kmeUrl: string;
  readonly log: Logger;
  /** Every route served, as `METHOD /path`: the SAE API and the KME-to-KME channel. */
  readonly routes: { readonly sae: readonly string[]; readonly kme: readonly string[] };
  /** Relay paths an SDN controller installed (centralized mode, docs/sdn.md). */
  readonly installedRoutes: InstalledRoutes;
  setPeerUrl(kmeId: string, url: string): void;
  /** Re-reads the configuration file now (SIGHUP): its SAE list applies, other changes need a restart. */
  reloadConfig(): void;
  /** What the dashboard shows of this KME (also `GET /api/v1/admin/overview`). */
  overview(): Promise<KmeOverview>;
  stop(): Promise<void>;
}

/** Knobs for tests; a deployment leaves them alone. */
export interface KmeRunOptions {
  /** How often links are sampled for the dashboard's time series and measured rate. */
  readonly sampleIntervalMs?: number;
  /** Wraps the key store, e.g. to watch which blocks are consumed. */
  readonly wrapStore?: (store: KeyStore) => KeyStore;
}

export { MASTER_KEY_FILE } from '../stores/master-key.js';

const urlOf = (app: FastifyInstance, host: string) =>
  `https://${host.includes(':') ? `[${host}]` : host}:${(app.server.address() as AddressInfo).port}`;

/**
 * The KME's own log on stdout, buffered: a write per line held the event loop in a system call
 * on every request (7-11% of its time in profiles under load). Lines go out in 4 KiB writes, and
 * at least every 100 ms; pino writes what is left synchronously when the process exits, an
 * uncaught error included. A SIGKILL loses at most the last 100 ms of lines.
 */
const stdoutLogger = (level: string) =>
  pino({ level }, pino.destination({ dest: 1, sync: false, minLength: 4096, periodicFlush: 100 }));

/**
 * Starts one KME: store, key sources, the SAE API and the KME-to-KME channel. Its data_dir is
 * locked first (a second KME on it is refused, DataDirInUse); a start that fails part-way undoes
 * what it had started, releasing the lock.
 */
export async function startKme(
  cfg: KmeConfig,
  log: Logger = stdoutLogger(cfg.log_level),
  run: KmeRunOptions = {},
): Promise<RunningKme> {
  log = log.child({ kme: cfg.kme_id });
  checkConfigFiles(cfg);
  const lock = await lockDataDir(cfg.data_dir, cfg.kme_id);
  const teardown = new Teardown();
  teardown.add(() => lock.release());
  try {
    return await startLocked(cfg, log, run, teardown);
  } catch (err) {
    await teardown.run().catch((e: unknown) => log.error({ err: (e as Error).message }, 'undoing a failed start'));
    throw err;
  }
}

async function startLocked(cfg: KmeConfig, log: Logger, run: KmeRunOptions, teardown: Teardown): Promise<RunningKme> {
  const barrier = openConfiguredBarrier(cfg, log, teardown);
  const opened = await openStore(cfg, barrier, log);
  const store = run.wrapStore?.(opened) ?? opened;
  teardown.add(() => store.close());
  if (cfg.store === 'memory') log.warn('memory store: keys do not survive a restart; for tests only');
  if (opened instanceof SqliteKeyStore && opened.upgrade) {
    log.warn(opened.upgrade, 'keys.db of an earlier format upgraded: its blocks and keys were dropped, never reused');
  }
  if (cfg.store === 'sqlite' && cfg.store_synchronous === 'NORMAL') {
    log.warn('store_synchronous NORMAL: a power loss can undo answered commits and hand out key material again');
  }

  const burned = await store.burnAllReserved();
  if (burned > 0) log.warn({ burned }, 'burned keys left unconfirmed by an earlier run');

  const crls = new CrlUpkeep({
    lists: [
      ...(cfg.sae_api.crl ? [{ api: 'sae_api', file: cfg.sae_api.crl }] : []),
      ...(cfg.kme_api.crl ? [{ api: 'kme_api', file: cfg.kme_api.crl }] : []),
    ],
    renew: cfg.crl.renew,
    warnBeforeMs: cfg.crl.warn_before_seconds * 1000,
    checkIntervalMs: cfg.crl.check_interval_seconds * 1000,
    log,
  });
  // Before the TLS files are read: a list that expired while the KME was down is renewed first.
  await crls.check();

  const saeTlsFiles = { ...cfg.sae_api, ca: cfg.sae_api.client_ca };
  const kmeTls = readTls(cfg.kme_api);
  // Filled once the KME channel exists: a QKD link post-processes over it.
  const pools: LinkPool[] = [];
  const history = new LinkHistory(pools, run.sampleIntervalMs ? { intervalMs: run.sampleIntervalMs } : {});
  // The key service comes later; metrics read its counters only when scraped.
  const delivered = (): KeyService['delivered'] => keys.delivered;
  const metrics = new KmeMetrics({
    pools,
    history,
    store,
    keySize: limitsOf(cfg).keySize,
    delivered,
    crls: () => crls.status(),
  });
  const peerSync = new PeerSyncTracker(
    cfg.peers.map((p) => p.kme_id),
    metrics,
  );
  // Peer streams (one framed connection per peer each): one for key synchronisation, on the path
  // of every cross-site enc_keys, and one for the QKD link's post-processing, whose multi-MB
  // messages must not hold a reservation up.
  const newStreams = () =>
    new PeerStreams({ peers: cfg.peers.map((p) => ({ kmeId: p.kme_id, url: p.url })), tls: kmeTls, log });
  const syncStreams = newStreams();
  const streams = newStreams();
  teardown.add(() => [syncStreams, streams].forEach((s) => s.close()));
  const peers = new PeerClient({ streams: syncStreams, store, log, observer: peerSync });
  teardown.add(() => peers.close());
  const qkdEnds = new Map<string, QkdLink>();
  for (const link of cfg.links) {
    const ends = { linkId: link.id, endpoints: link.endpoints, blockBits: link.block_bits };
    const source = createSource(cfg.kme_id, link, streams, log);
    if (source instanceof QkdLink) qkdEnds.set(link.id, source);
    pools.push(new LinkPool({ kmeId: cfg.kme_id, ends, capacityBlocks: link.capacity_blocks }, store, barrier, source));
  }
  // What this KME knows of the network's links, for relay paths by key availability.
  const linkState = new LinkStateService({ kmeId: cfg.kme_id, pools, streams, log });
  teardown.add(() => linkState.stop());
  const limits = limitsOf(cfg);
  // Where each SAE is served; follows the configuration file's `saes` while the KME runs.
  const saes = new SaeTable(cfg.saes);
  const routes = new InstalledRoutes(cfg.kme_id, join(cfg.data_dir, 'routes.json'));
  const keys = new KeyService({
    kmeId: cfg.kme_id,
    limits,
    directory: saes,
    store,
    barrier,
    pools,
    peers,
    newKeyId: randomUUID,
    blockWaitMs: 2000,
    ...(cfg.network ? { network: { links: cfg.network.links, untrusted: new Set(cfg.network.untrusted ?? []) } } : {}),
    linkCost: (bits) => linkState.db.cost(bits),
    advertisedBits: (from, peer) => linkState.db.availableBits(from, peer),
    installedPath: (target) => routes.pathTo(target),
  });
  const info = async () => ({
    KME_ID: cfg.kme_id,
    key_sources: await Promise.all(
      pools.map(async (p) => {
        const s = p.source.info();
        return {
          link_ID: p.linkId,
          peer_KME_ID: p.peerKme,
          kind: s.kind,
          protocol: s.protocol,
          state: s.state,
          description: s.description,
          ...(s.error ? { error: s.error } : {}),
          ...(s.stats ? { stats: s.stats } : {}),
          rate_bps: s.rateBps,
          ...(s.expectedRateBps !== undefined ? { expected_rate_bps: s.expectedRateBps } : {}),
          block_bits: s.blockBits,
          capacity_blocks: p.capacityBlocks,
          own_blocks: await p.ownBlocks(),
          peer_blocks: await p.peerBlocks(),
        };
      }),
    ),
    keys_waiting_for_slaves: (await store.countKeys()).ready,
    keys_delivered: { to_masters: keys.delivered.toMasters, to_slaves: keys.delivered.toSlaves },
  });

  const integrations = new IntegrationBoard();
  const startup = new LinkStartup();
  const overview = () =>
    buildOverview({
      kmeId: cfg.kme_id,
      keySize: limits.keySize,
      localSaes: saes.servedBy(cfg.kme_id),
      pools,
      store,
      history,
      startup,
      deliveries: keys.deliveries,
      delivered: keys.delivered,
      integrations,
      peerSync,
      crls: () => crls.status(),
      relays: keys.relays,
    });

  // The ETSI GS QKD 015 view for SDN controllers (docs/sdn.md), beside /metrics.
  const sdn: SdnSources = {
    kmeId: cfg.kme_id,
    version: qksVersion(),
    location: cfg.node_address ?? '',
    relays: !(cfg.network?.untrusted ?? []).includes(cfg.kme_id),
    pools,
    history,
    deliveries: keys.deliveries,
    relayLog: keys.relays,
    kmeOfSae: (sae) => saes.kmeOf.get(sae),
    registry: new AppRegistry(cfg.data_dir),
    linkWrites: { kmeId: cfg.kme_id, routes, neighbours: () => pools.map((p) => p.peerKme) },
    log,
  };

  const { oidc } = cfg.sae_api.auth;
  const tokens = oidc
    ? new TokenVerifier({
        issuer: oidc.issuer,
        audience: oidc.audience,
        ...(oidc.algorithms ? { algorithms: oidc.algorithms } : {}),
        ...(oidc.sae_claim ? { saeClaim: oidc.sae_claim } : {}),
        ...(oidc.ca ? { ca: readFileSync(oidc.ca) } : {}),
        ...(oidc.allow_loopback_http ? { allowLoopbackHttp: true } : {}),
      })
    : undefined;
  const localSae = (sae: string) => saes.kmeOf.get(sae) === cfg.kme_id;
  // One policy for the ETSI API and SKIP: a rate limit counts requests through either.
  const access = new AccessPolicy({
    admins: [...cfg.access.admins, ...cfg.access.operators],
    adminScope: cfg.access.admin_scope,
    rules: cfg.access.rules.map((r) => ({
      sae: r.sae,
      slaves: r.slaves,
      ...(r.max_keys_per_request ? { maxKeysPerRequest: r.max_keys_per_request } : {}),
      ...(r.requests_per_minute ? { requestsPerMinute: r.requests_per_minute } : {}),
    })),
  });
  const saeApi = buildSaeApi({
    tls: readTls(saeTlsFiles),
    keys,
    auth: new SaeAuthenticator(cfg.sae_api.auth.mode, tokens),
    access,
    knownSae: (sae) => saes.kmeOf.has(sae),
    ...(cfg.sae_api.connections ? { listener: cfg.sae_api.connections } : {}),
    localSae,
    preferences: new PreferenceService(store),
    limits,
    info,
    log,
    metrics,
    operator: {
      kmeId: cfg.kme_id,
      metrics,
      overview,
      integrations,
      localSae,
      sdn,
    },
  });
  const peerApi = buildPeerApi({
    tls: kmeTls,
    peers: new Set(cfg.peers.map((p) => p.kme_id)),
    keys,
    log,
    ...(cfg.kme_api.connections ? { listener: cfg.kme_api.connections } : {}),
  });
  const streamServer = attachPeerStream(peerApi.server, {
    peers: new Set(cfg.peers.map((p) => p.kme_id)),
    handlers: new Map([
      ...keySyncHandlers(keys, log),
      [LINK_STATE_CHANNEL, linkState.handler],
      ...qkdLinkHandlers({
        ends: qkdEnds,
        leaderOf: (id) => cfg.links.find((l) => l.id === id)?.endpoints[0],
        // Messages come only once the KME listens, after its owned work has started.
        serve: (id, answer) => work.serve(id, answer),
      }),
    ]),
    log,
  });

  // At replicas, the follower end of a QKD link runs where the leader's messages arrive.
  const followed = new Set(
    cfg.links.filter((l) => qkdEnds.has(l.id) && l.endpoints[0] !== cfg.kme_id).map((l) => l.id),
  );
  const work = await startOwnedWork(cfg.kme_id, pools, peers, log, replicaOf(cfg, opened), followed);
  teardown.add(() => work.stop());
  history.start();
  teardown.add(() => history.stop());
  // Closed before the pools stop: a request in flight finishes with its link still running.
  teardown.add(() => peerApi.close());
  teardown.add(() => streamServer.close());
  teardown.add(() => saeApi.close());
  // Watching starts before listening, so that no connection escapes a later revocation.
  const stopWatching = [
    reloadOnCrlChange(saeApi.server as unknown as TlsServer, saeTlsFiles, SAE_TLS_OPTIONS, log),
    // The KME's own streams to its peers check the peers' certificates against the same list.
    reloadOnCrlChange(peerApi.server as unknown as TlsServer, cfg.kme_api, PEER_TLS_OPTIONS, log, (crl) =>
      [syncStreams, streams].forEach((s) => s.reloadCrl(crl)),
    ),
  ];
  // `qks kme` and the demo load the file: a KME follows its `saes` (an SAE added by `qks pki issue`).
  const configWatch = cfg.source_file ? watchSaeList({ running: cfg, saes, log }) : undefined;
  if (configWatch) stopWatching.push(configWatch.stop);
  teardown.add(() => stopWatching.forEach((stop) => stop()));
  await listenAs(saeApi, 'sae_api', cfg);
  await listenAs(peerApi, 'kme_api', cfg);
  const skip = await startSkip(cfg, { keys, access, limits, saes: () => [...saes.kmeOf.keys()], log });
  if (skip) teardown.add(() => skip.close());
  // Adverts only once this KME can be reached: a start that fails opens no connection to its peers.
  linkState.start();
  // Keys whose master never passed their IDs on (a crash between delivery and response) would
  // otherwise wait for their slaves forever.
  const sweeper = setInterval(() => {
    store
      .expireBefore(Date.now() - cfg.key_ttl_seconds * 1000)
      .then((n) => n > 0 && log.info({ expired: n }, 'forgot keys no slave fetched in time'))
      .catch((err: unknown) => log.error({ err: (err as Error).message }, 'expiry sweep failed'));
  }, 60_000);
  sweeper.unref();
  crls.start();
  teardown.add(() => crls.stop());
  teardown.add(() => clearInterval(sweeper));
  const running: RunningKme = {
    id: cfg.kme_id,
    saeUrl: urlOf(saeApi, cfg.sae_api.host),
    kmeUrl: urlOf(peerApi, cfg.kme_api.host),
    log,
    routes: { sae: saeApi.routeList, kme: peerApi.routeList },
    installedRoutes: routes,
    setPeerUrl: (kmeId, url) => [syncStreams, streams].forEach((s) => s.setPeerUrl(kmeId, url)),
    reloadConfig: () => configWatch?.reload(),
    overview,
    stop: () => teardown.run(),
  };
  log.info({ sae_api: running.saeUrl, kme_api: running.kmeUrl }, 'KME ready');
  return running;
}
