import type { FastifyInstance, FastifyRequest } from 'fastify';
import { parseIntegrationReport } from '../../domain/integration-report.js';
import { QksError } from '../../domain/errors.js';
import { kmeHealth, storeDown } from '../../domain/kme-health.js';
import { dashboardFiles } from '../../dashboard/static-files.js';
import { EventStreams } from '../../dashboard/sse.js';
import { buildNetwork, type NetworkView } from '../../dashboard/network.js';
import type { IntegrationBoard } from '../observability/integration-board.js';
import type { KmeMetrics } from '../observability/metrics.js';
import type { KmeOverview } from '../observability/overview.js';
import { addRestconfRoutes, type SdnSources } from './restconf-routes.js';

export interface OperatorViews {
  readonly kmeId: string;
  readonly metrics: KmeMetrics;
  readonly overview: () => Promise<KmeOverview>;
  readonly integrations: IntegrationBoard;
  /** Whether this KME serves the SAE: only its own SAEs report here. */
  readonly localSae: (sae: string) => boolean;
  /** How often the event stream sends a fresh view. */
  readonly eventIntervalMs?: number;
  readonly now?: () => number;
  /** The ETSI GS QKD 015 node interface (RESTCONF, docs/sdn.md); left out, not served. */
  readonly sdn?: SdnSources;
}

export interface OperatorGuards {
  /** Throws a 401 unless the caller is an administrator (admin SAE, or a token with the admin scope). */
  requireAdmin(req: FastifyRequest): void;
}

/**
 * What operators and integration agents use beside the ETSI API: the dashboard and its data,
 * Prometheus metrics, all read-only and for administrators only; and the report an SAE's agents
 * send about their tunnels and IPsec connections.
 */
export function addOperatorRoutes(app: FastifyInstance, views: OperatorViews, guard: OperatorGuards): void {
  const now = views.now ?? Date.now;
  const files = dashboardFiles();
  const streams = new EventStreams();
  app.addHook('preClose', async () => streams.closeAll());

  app.get('/metrics', async (req, reply) => {
    guard.requireAdmin(req);
    return reply.type(views.metrics.contentType).send(await views.metrics.text());
  });
  app.get('/api/v1/admin/overview', (req) => {
    guard.requireAdmin(req);
    return views.overview();
  });
  // For service managers and load balancers: 200 while keys can be delivered, 503 when none can.
  app.get('/api/v1/admin/health', async (req, reply) => {
    guard.requireAdmin(req);
    const health = await views.overview().then(kmeHealth, (err: Error) => storeDown(err.message));
    return reply.code(health.status === 'down' ? 503 : 200).send({ KME_ID: views.kmeId, ...health });
  });
  // However many pages are open, the KME builds one view per interval for all of them: a view
  // counts the pools in the store, which costs milliseconds for a full pool.
  const interval = views.eventIntervalMs ?? 1000;
  let shared: { at: number; view: Promise<NetworkView> } | undefined;
  const network = () => {
    if (!shared || now() - shared.at >= interval * 0.9) {
      const view = views
        .overview()
        .then((overview) => buildNetwork([{ KME_ID: overview.KME_ID, reachable: true, overview }], now()));
      shared = { at: now(), view };
      view.catch(() => (shared = undefined));
    }
    return shared.view;
  };
  app.get('/api/v1/admin/events', (req, reply) => {
    guard.requireAdmin(req);
    streams.serve(req, reply, network, interval);
  });
  app.get('/dashboard/', (req, reply) => {
    guard.requireAdmin(req);
    return files.send(reply, 'index.html');
  });
  for (const name of files.names.filter((n) => n !== 'index.html')) {
    app.get(`/dashboard/${name}`, (req, reply) => {
      guard.requireAdmin(req);
      return files.send(reply, name);
    });
  }
  if (views.sdn) addRestconfRoutes(app, views.sdn, guard);
  app.post<{ Body: unknown }>('/api/v1/integrations/report', (req) => {
    if (!views.localSae(req.sae)) throw new QksError('UNAUTHORIZED', `${req.sae} is not an SAE of this KME`);
    const report = parseIntegrationReport(req.body);
    views.integrations.report(req.sae, report, now());
    req.saeLog.debug({ kind: report.kind, name: report.name, key_ID: report.key_ID }, 'integration report');
    return { SAE_ID: req.sae, ...report };
  });
}
