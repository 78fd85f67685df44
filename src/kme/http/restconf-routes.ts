import { readFileSync } from 'node:fs';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { Logger } from 'pino';
import { QksError } from '../../domain/errors.js';
import { AppRegistry } from '../../sdn/app-registry.js';
import { nodeUuid } from '../../sdn/ids.js';
import type { AppConfig } from '../../sdn/node-apps.js';
import { buildNodeDocument, type NodeInput } from '../../sdn/node-model.js';
import { firstProblem, validateAppWrite } from '../../sdn/node-schema.js';
import {
  appEntryOf,
  invalidValue,
  malformed,
  MEDIA_TYPE,
  NODE_PATH,
  notFound,
  parseDataPath,
  RestconfError,
  selectResource,
  type Step,
} from '../../sdn/restconf.js';
import type { KeySource } from '../../sources/key-source.js';
import type { DeliveryLog } from '../observability/delivery-log.js';
import type { LinkHistory } from '../observability/link-history.js';
import type { RelayLog } from '../observability/relay-log.js';
import { allowed as allowedOnLinks, writeVirtualLink, type LinkWriteDeps } from './restconf-links.js';

/** What a KME's ETSI GS QKD 015 view is made of: its live state (docs/sdn.md). */
export interface SdnSources {
  readonly kmeId: string;
  readonly version: string;
  readonly location: string;
  readonly relays: boolean;
  readonly pools: ReadonlyArray<{
    readonly linkId: string;
    readonly peerKme: string;
    readonly source: KeySource;
    readonly ends: { readonly blockBits: number };
    ownBlocks(): Promise<number>;
  }>;
  readonly history: LinkHistory;
  readonly deliveries: DeliveryLog;
  readonly relayLog: RelayLog;
  readonly kmeOfSae: (sae: string) => string | undefined;
  readonly registry: AppRegistry;
  /** Virtual links a controller installs: the KME's installed routes. */
  readonly linkWrites: Omit<LinkWriteDeps, 'shows'>;
  readonly log: Logger;
  readonly now?: () => number;
}

/** QKS's version (package.json), shown as qkdn_version. */
export const qksVersion = (): string =>
  (JSON.parse(readFileSync(new URL('../../../../package.json', import.meta.url), 'utf8')) as { version: string })
    .version;

/** The live state, read now, as the pure builder's input. */
export async function liveNodeInput(s: SdnSources, now: number): Promise<NodeInput> {
  const links = await Promise.all(
    s.pools.map(async (pool) => {
      const info = pool.source.info();
      const measured = info.stats?.secretBps ?? s.history.latest(pool.linkId)?.rateBps;
      return {
        linkId: pool.linkId,
        peerKme: pool.peerKme,
        kind: info.kind,
        protocol: info.protocol,
        state: info.state,
        skrBps: measured ?? info.rateBps,
        qber: info.stats?.qber ?? null,
        availableBits: (await pool.ownBlocks()) * pool.ends.blockBits,
      };
    }),
  );
  const relayLog = s.relayLog.summary().recent.map((r) => ({ at: r.at, path: r.path, bits: r.bits, ok: r.ok }));
  const deliveries = Object.values(s.deliveries.recent()).flat();
  return {
    kmeId: s.kmeId,
    version: s.version,
    location: s.location,
    relays: s.relays,
    now,
    links,
    relayLog,
    deliveries,
    registered: s.registry.list(),
    installed: s.linkWrites.routes.list(),
    kmeOfSae: s.kmeOfSae,
  };
}

const WRITABLE = ['application/yang-data+json', 'application/json'];
const APPS = 'qkd_applications';

/** Which methods each kind of resource takes (RFC 8040 §4), and what a write there does. */
function methodsOf(steps: readonly Step[]): string {
  const [first, second] = steps;
  if (steps.length === 1 && first!.name === APPS) return 'GET, HEAD, POST';
  if (steps.length === 2 && first!.name === APPS && second!.key !== undefined) return 'GET, HEAD, PUT, DELETE';
  if (first?.name === 'qkd_links' && steps.length <= 2) return allowedOnLinks(steps);
  return 'GET, HEAD';
}

/** A write of virtual links: a controller installing relay paths (restconf-links.ts). */
const isLinkWrite = (steps: readonly Step[]) => steps[0]?.name === 'qkd_links' && steps.length <= 2;

export interface RestconfGuard {
  requireAdmin(req: FastifyRequest): void;
}

/**
 * `/restconf/data/etsi-qkd-sdn-node:qkd_node` and below, for administrators only (the operator
 * certificate, as for /metrics). Registered in a plugin of its own: its body parsers, error
 * handler and error bodies (`ietf-restconf:errors`) apply to these routes only.
 */
export function addRestconfRoutes(app: FastifyInstance, s: SdnSources, guard: RestconfGuard): void {
  const now = s.now ?? Date.now;
  const me = nodeUuid(s.kmeId);
  const document = async () => buildNodeDocument(await liveNodeInput(s, now()))['etsi-qkd-sdn-node:qkd_node'];

  void app.register(async (scope) => {
    scope.removeAllContentTypeParsers();
    scope.addContentTypeParser(WRITABLE, { parseAs: 'string' }, (_req, body, done) => {
      const text = (body as string).trim();
      if (text === '') return done(null, undefined);
      try {
        done(null, JSON.parse(text));
      } catch {
        done(malformed('the body is not valid JSON'), undefined);
      }
    });
    scope.setErrorHandler((err, req, reply) => {
      const e = toRestconfError(err);
      // The admin check names its refusal (access_rules) itself; docs/metrics.md lists the others.
      req.refusal ||= e.status >= 500 ? 'internal' : `restconf_${e.tag.replace(/-/g, '_')}`;
      if (e.status >= 500) s.log.error({ err }, 'RESTCONF request failed');
      return sendRestconfError(reply, e);
    });

    scope.route({
      method: ['GET', 'POST', 'PUT', 'PATCH', 'DELETE'],
      url: '/restconf/*',
      handler: async (req, reply) => {
        guard.requireAdmin(req);
        if (req.url.includes('?')) throw invalidValue('query parameters are not supported here');
        const steps = parseDataPath(req.url);
        const allow = methodsOf(steps);
        if (req.method === 'GET' || req.method === 'HEAD') {
          return reply.type(MEDIA_TYPE).send(selectResource(await document(), steps));
        }
        if (isLinkWrite(steps) && req.method !== 'PATCH') {
          const links = (await document()).qkd_links.qkd_link;
          return writeVirtualLink(
            { ...s.linkWrites, shows: async (id) => links.some((l) => l.qkdl_id === id) },
            req.method,
            steps,
            req.body,
            reply,
          );
        }
        if (!allow.includes(req.method)) {
          throw new RestconfError(
            405,
            'protocol',
            'operation-not-supported',
            `${req.method} is not allowed here`,
            allow,
          );
        }
        if (req.method === 'POST') {
          const config = checkApp(appEntryOf(req.body), me);
          if (s.registry.get(config.app_id)) {
            throw new RestconfError(409, 'application', 'data-exists', `qkd_app ${config.app_id} exists already`);
          }
          s.registry.put(config, now());
          s.log.info({ app_id: config.app_id }, 'SDN application registered');
          return reply
            .code(201)
            .header('location', `${NODE_PATH}/${APPS}/qkd_app=${encodeURIComponent(config.app_id)}`)
            .send();
        }
        const appId = steps[1]!.key!;
        if (req.method === 'PUT') {
          const config = checkApp(appEntryOf(req.body), me);
          if (config.app_id !== appId) throw invalidValue(`app_id ${config.app_id} is not the ${appId} of the path`);
          const done = s.registry.put(config, now());
          s.log.info({ app_id: appId, done }, 'SDN application written');
          return reply.code(done === 'created' ? 201 : 204).send();
        }
        if (!s.registry.get(appId)) {
          const shown = (await document()).qkd_applications.qkd_app.some((a) => a.app_id === appId);
          if (!shown) throw notFound(`${APPS}/qkd_app=${appId}`);
          throw new RestconfError(
            405,
            'protocol',
            'operation-not-supported',
            'this application comes from the deliveries of its SAEs, not from a registration: it cannot be deleted',
            'GET, HEAD',
          );
        }
        s.registry.delete(appId);
        s.log.info({ app_id: appId }, 'SDN application deleted');
        return reply.code(204).send();
      },
    });
  });
}

/** A written qkd_app, checked against the schema and against this node. */
function checkApp(entry: unknown, me: string): AppConfig {
  if (!validateAppWrite(entry)) throw invalidValue(firstProblem(validateAppWrite));
  const config = entry as AppConfig;
  if (config.local_qkdn_id !== undefined && config.local_qkdn_id.toLowerCase() !== me) {
    throw invalidValue(`local_qkdn_id ${config.local_qkdn_id} is not this node (${me})`);
  }
  const qos = config.app_qos;
  if (qos && typeof qos['min_bandwidth'] === 'number' && typeof qos['max_bandwidth'] === 'number') {
    if (qos['min_bandwidth'] > qos['max_bandwidth']) throw invalidValue('app_qos: min_bandwidth exceeds max_bandwidth');
  }
  return config;
}

/** Fastify's own refusals (size, media type, URL), authorization and internal failures, as RFC 8040 says them. */
function toRestconfError(err: unknown): RestconfError {
  if (err instanceof RestconfError) return err;
  if (err instanceof QksError && err.status === 401) {
    return new RestconfError(401, 'protocol', 'access-denied', 'operator credentials required');
  }
  const status = (err as { statusCode?: number }).statusCode;
  if (status === 413) return new RestconfError(413, 'transport', 'too-big', 'request body is too large');
  if (status === 415) {
    return new RestconfError(415, 'protocol', 'invalid-value', `Content-Type must be ${WRITABLE.join(' or ')}`);
  }
  if (typeof status === 'number' && status >= 400 && status < 500) return malformed('malformed request');
  return new RestconfError(500, 'application', 'operation-failed', 'internal error');
}

export function sendRestconfError(reply: FastifyReply, e: RestconfError): FastifyReply {
  if (e.allow) reply.header('allow', e.allow);
  return reply.code(e.status).type(MEDIA_TYPE).send(e.body());
}

/** The answer to a request under /restconf/ that presented no acceptable credentials. */
export const restconfUnauthenticated = (reply: FastifyReply): FastifyReply =>
  sendRestconfError(reply, new RestconfError(401, 'protocol', 'access-denied', 'operator credentials required'));
