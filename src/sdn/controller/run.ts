import { randomUUID } from 'node:crypto';
import Fastify, { type FastifyInstance } from 'fastify';
import type { Logger } from 'pino';
import type { PathRequest } from '../../domain/pce.js';
import { PceServer, type PathComputationRequest } from '../pcep/index.js';
import type { ControllerConfig } from './config.js';
import { Controller } from './controller.js';
import { addServiceRoutes } from './services-api.js';

export interface RunningController {
  readonly controller: Controller;
  /** The HTTP API: `GET /api/v1/network`, `POST /api/v1/paths`. */
  readonly url: string;
  readonly pcep: { readonly host: string; readonly port: number };
  stop(): Promise<void>;
}

const DEFAULT_BITS = 256;

/** A path request of the API, by KME ID or node address at either end. */
const PATHS_BODY = {
  type: 'object',
  additionalProperties: false,
  required: ['source', 'destination'],
  properties: {
    source: { type: 'string', minLength: 1 },
    destination: { type: 'string', minLength: 1 },
    bits: { type: 'integer', minimum: 1, maximum: 1_048_576 },
    max_hops: { type: 'integer', minimum: 1, maximum: 32 },
    min_rate_bps: { type: 'number', minimum: 0 },
    min_available_bits: { type: 'number', minimum: 0 },
    paths: { type: 'integer', minimum: 1, maximum: 8 },
  },
} as const;

interface PathsBody {
  source: string;
  destination: string;
  bits?: number;
  max_hops?: number;
  min_rate_bps?: number;
  min_available_bits?: number;
  paths?: number;
}

/** Starts the controller: it reads every KME once, then serves its API and the PCE. */
export async function startController(cfg: ControllerConfig, log: Logger): Promise<RunningController> {
  const controller = new Controller({
    kmes: cfg.kmes.map((k) => ({ id: k.id, url: k.url, nodeAddress: k.node_address, trusted: k.trusted ?? true })),
    credentials: { ca: cfg.ca, cert: cfg.cert, key: cfg.key },
    pollIntervalMs: cfg.poll_interval_ms ?? 2000,
    log,
  });
  await controller.start();
  const stops: Array<() => Promise<void>> = [() => controller.stop()];
  const stop = async () => {
    for (const s of stops.reverse()) await s().catch(() => undefined);
  };
  try {
    const pce = await PceServer.listen({
      host: cfg.pcep?.host ?? '127.0.0.1',
      port: cfg.pcep?.port ?? 4189,
      log,
      computePath: async (r) => pcepPath(controller, r),
    });
    stops.push(() => pce.close());
    const api = controllerApi(controller);
    addServiceRoutes(api, controller, {
      stateDir: cfg.state_dir ?? '.',
      kmeOfSae: new Map((cfg.saes ?? []).map((s) => [s.id, s.kme])),
    });
    stops.push(() => api.close());
    await api.listen({ host: cfg.api?.host ?? '127.0.0.1', port: cfg.api?.port ?? 0 });
    const address = api.server.address() as { address: string; port: number };
    const url = `http://${address.address}:${address.port}`;
    log.info({ api: url, pcep: pce.address }, 'controller ready');
    return { controller, url, pcep: pce.address, stop };
  } catch (err) {
    await stop();
    throw err;
  }
}

/** A PCReq's path: endpoints and hops by node address; the QKD key length weighs the links. */
function pcepPath(controller: Controller, r: PathComputationRequest) {
  const source = controller.kmeAt(r.source);
  const destination = controller.kmeAt(r.destination);
  if (!source || !destination) return null;
  const bits = r.qkd ? r.qkd.keyLength * 8 : DEFAULT_BITS;
  const [path] = controller.paths({ source, destination, bits });
  return path ? { hops: path.nodes.map((n) => controller.addressOf(n)!) } : null;
}

function controllerApi(controller: Controller): FastifyInstance {
  const app = Fastify({ logger: false });
  app.get('/api/v1/network', async () => controller.view());
  const compute = (b: PathsBody) => {
    const end = (v: string) => controller.kmeAt(v) ?? (controller.addressOf(v) ? v : undefined);
    const [source, destination] = [end(b.source), end(b.destination)];
    if (!source || !destination) return `unknown node: ${!source ? b.source : b.destination}`;
    const request: PathRequest = {
      source,
      destination,
      bits: b.bits ?? DEFAULT_BITS,
      ...(b.max_hops === undefined ? {} : { maxHops: b.max_hops }),
      ...(b.min_rate_bps === undefined ? {} : { minRateBps: b.min_rate_bps }),
      ...(b.min_available_bits === undefined ? {} : { minAvailableBits: b.min_available_bits }),
      ...(b.paths === undefined ? {} : { paths: b.paths }),
    };
    return controller.paths(request).map((p) => ({ ...p, addresses: p.nodes.map((n) => controller.addressOf(n)) }));
  };
  app.post<{ Body: PathsBody }>('/api/v1/paths', { schema: { body: PATHS_BODY } }, async (req, reply) => {
    const paths = compute(req.body);
    return typeof paths === 'string' ? reply.code(400).send({ message: paths }) : { paths };
  });
  // Centralized mode: the path computed now, installed in its first KME as a virtual link.
  app.get('/api/v1/virtual-links', async () => ({ virtual_links: controller.installedPaths() }));
  app.post<{ Body: PathsBody }>('/api/v1/virtual-links', { schema: { body: PATHS_BODY } }, async (req, reply) => {
    const paths = compute({ ...req.body, paths: 1 });
    if (typeof paths === 'string') return reply.code(400).send({ message: paths });
    if (paths.length === 0) return reply.code(409).send({ message: 'no path meets the constraints now' });
    const id = randomUUID();
    try {
      await controller.install(id, paths[0]!.nodes);
    } catch (err) {
      return reply.code(502).send({ message: `the KME refused the virtual link: ${(err as Error).message}` });
    }
    return reply.code(201).send({ id, path: paths[0]!.nodes });
  });
  app.delete<{ Params: { id: string } }>('/api/v1/virtual-links/:id', async (req, reply) => {
    const removed = await controller.uninstall(req.params.id.toLowerCase());
    return removed ? reply.code(204).send() : reply.code(404).send({ message: `no virtual link ${req.params.id}` });
  });
  return app;
}
