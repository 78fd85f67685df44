import Fastify, { type FastifyInstance, type FastifyRequest } from 'fastify';
import type { TLSSocket } from 'node:tls';
import type { Logger } from 'pino';
import { parseKeyIdQuery, parseKeyIds } from '../../domain/key-ids.js';
import { parseKeyRequest, parseKeyRequestQuery, type KeyRequest } from '../../domain/key-request.js';
import type { KeyLimits } from '../../domain/limits.js';
import type { Caller, SaeAuthenticator } from '../../auth/sae-authenticator.js';
import type { AccessDecision, AccessPolicy } from '../../domain/access-policy.js';
import type { KeyService } from '../key-service.js';
import type { PreferenceService } from '../preference-service.js';
import { sendEtsiError, toEtsiError } from './etsi-errors.js';
import { badRequest, QksError } from '../../domain/errors.js';
import { parsePreference } from '../../domain/preferences.js';
import { acceptJsonBodies } from './json-body.js';
import { guardListener, serverOptions, type ListenerSettings } from './server-options.js';
import { recordRoutes } from './route-list.js';
import type { KmeMetrics } from '../observability/metrics.js';
import { addOperatorRoutes, type OperatorViews } from './operator-routes.js';
import { restconfUnauthenticated } from './restconf-routes.js';

export interface SaeApiOptions {
  readonly tls: { key: string | Buffer; cert: string | Buffer; ca: string | Buffer; crl?: string | Buffer };
  readonly keys: KeyService;
  readonly preferences: PreferenceService;
  readonly limits: KeyLimits;
  readonly auth: SaeAuthenticator;
  readonly access: AccessPolicy;
  readonly now?: () => number;
  readonly knownSae: (sae: string) => boolean;
  /** SAEs this KME serves: only they read its information and their preferences, as only they take keys. */
  readonly localSae: (sae: string) => boolean;
  readonly info: () => Promise<unknown>;
  readonly log: Logger;
  readonly bodyLimit?: number;
  /** Connection cap and timeouts (defaults in server-options.ts). */
  readonly listener?: ListenerSettings;
  readonly metrics?: KmeMetrics;
  /** The dashboard, /metrics and integration reports; left out, the API serves ETSI and extensions only. */
  readonly operator?: OperatorViews;
}

declare module 'fastify' {
  interface FastifyRequest {
    sae: string;
    caller: Caller;
    /** The caller's log (its SAE's level), with this request's ID; made when first used. */
    readonly saeLog: Logger;
    /** The caller's SAE logger, without the request ID. */
    saeBase: Logger | null;
    saeChild: Logger | null;
    /** Why the request is refused, for the refusals metric; set by whatever refuses it first. */
    refusal: string;
  }
}

type Params = { Params: { id: string }; Querystring: Record<string, unknown> };

/**
 * The ETSI GS QKD 014 key delivery API and the earlier QKS's extension endpoints. Every request
 * is authenticated (client certificate and/or bearer token, as configured) before anything else
 * runs, and key requests pass the access rules before any key is touched.
 */
/** Certificates are asked for, but checked per request so that a refusal is a 401, not a broken handshake. */
export const SAE_TLS_OPTIONS = { requestCert: true, rejectUnauthorized: false, minVersion: 'TLSv1.2' } as const;

export function buildSaeApi(opts: SaeApiOptions): FastifyInstance {
  const app = Fastify({
    ...serverOptions(opts.log, { ...opts.tls, ...SAE_TLS_OPTIONS }, opts.listener),
    bodyLimit: opts.bodyLimit ?? 64 * 1024,
  }) as unknown as FastifyInstance;
  guardListener(app.server, opts.listener);
  acceptJsonBodies(app);
  app.decorate('routeList', recordRoutes(app));
  app.decorateRequest('sae', '');
  app.decorateRequest('caller', null as unknown as Caller);
  app.decorateRequest('saeBase', null);
  app.decorateRequest('saeChild', null);
  // A child logger per request cost more than the rest of the request's logging: most requests
  // log one line, written with the request ID in place (see onResponse).
  app.decorateRequest('saeLog', {
    getter(this: FastifyRequest) {
      return (this.saeChild ??= this.saeBase?.child({ reqId: this.id }) ?? (null as unknown as Logger));
    },
  });
  app.decorateRequest('refusal', '');

  app.addHook('onRequest', async (req, reply) => {
    const result = await opts.auth.identify(req.raw.socket as TLSSocket, req.headers.authorization);
    if (!result.ok) {
      opts.log.warn(
        { remote: req.ip, url: req.url.split('?')[0], reason: result.reason, presented: result.presented },
        'refused: not authenticated',
      );
      req.refusal = 'not_authenticated';
      // RESTCONF clients read RFC 8040 error bodies; everyone else the ETSI one.
      if (req.url.startsWith('/restconf/')) return restconfUnauthenticated(reply);
      return sendEtsiError(reply, new QksError('UNAUTHORIZED'));
    }
    const sae = result.caller.sae;
    req.caller = result.caller;
    req.sae = sae;
    req.saeBase = await opts.preferences.logger(opts.log, sae);
  });
  app.addHook('onResponse', async (req, reply) => {
    opts.metrics?.request(req.method, req.routeOptions.url ?? 'unmatched', reply.statusCode, reply.elapsedTime / 1000);
    if (reply.statusCode >= 400) opts.metrics?.refused(req.refusal || 'unknown');
    if (!req.saeBase?.isLevelEnabled('info')) return;
    const q = req.url.indexOf('?');
    const line = {
      method: req.method,
      url: q < 0 ? req.url : req.url.slice(0, q),
      status: reply.statusCode,
      ms: Math.round(reply.elapsedTime),
    };
    if (req.saeChild) req.saeChild.info(line, 'request');
    else req.saeBase.info({ reqId: req.id, ...line }, 'request');
  });
  app.setErrorHandler((err, req, reply) => {
    const { status } = toEtsiError(err);
    req.refusal ||= err instanceof QksError ? err.code.toLowerCase() : status === 503 ? 'internal' : 'bad_request';
    if (status === 503 && !(err instanceof QksError)) req.log.error({ err }, 'internal error');
    else if (status === 401)
      req.saeLog.warn({ reason: (err as Error).message, via: req.caller.via }, 'refused: unauthorized');
    else (req.saeLog ?? opts.log).info({ status, message: (err as Error).message }, 'request refused');
    return sendEtsiError(reply, err);
  });
  app.setNotFoundHandler((req, reply) => {
    req.refusal = 'no_such_endpoint';
    return reply.code(400).send({ message: 'no such endpoint' });
  });

  const now = opts.now ?? Date.now;
  /** Refusals are 401 `unauthorized`; the reason goes to the log with the caller's identity. */
  const enforce = (req: FastifyRequest, decision: AccessDecision) => {
    if (decision.allowed) return;
    req.saeLog.warn({ reason: decision.reason, via: req.caller.via }, 'refused by access rules');
    req.refusal = 'access_rules';
    throw new QksError('UNAUTHORIZED');
  };
  const encKeys = async (req: FastifyRequest<Params>, request: KeyRequest) => {
    const slaves = [req.params.id, ...request.additionalSlaveSaeIds];
    enforce(req, opts.access.checkKeyRequest(req.sae, slaves, request.number, now()));
    const container = await opts.keys.getKeys(req.sae, req.params.id, request);
    req.saeLog.debug({ key_IDs: container.keys.map((k) => k.key_ID) }, 'keys delivered to master');
    return container;
  };
  const decKeys = async (req: FastifyRequest<Params>, keyIds: string[]) => {
    enforce(req, opts.access.checkKeyRequest(req.sae, [], 0, now()));
    const container = await opts.keys.getKeysWithIds(req.sae, req.params.id, keyIds);
    req.saeLog.debug({ key_IDs: keyIds }, 'keys delivered to slave');
    return container;
  };

  app.get<Params>('/api/v1/keys/:id/status', (req) => opts.keys.status(req.sae, req.params.id));
  app.post<Params>('/api/v1/keys/:id/enc_keys', (req) =>
    encKeys(req, parseKeyRequest(req.body, opts.limits, req.params.id)),
  );
  app.get<Params>('/api/v1/keys/:id/enc_keys', (req) => encKeys(req, parseKeyRequestQuery(req.query, opts.limits)));
  app.post<Params>('/api/v1/keys/:id/dec_keys', (req) =>
    decKeys(req, parseKeyIds(req.body, opts.limits.maxKeyPerRequest)),
  );
  app.get<Params>('/api/v1/keys/:id/dec_keys', (req) => decKeys(req, parseKeyIdQuery(req.query)));

  const requireLocal = (req: FastifyRequest) => {
    if (!opts.localSae(req.sae)) throw new QksError('UNAUTHORIZED', `SAE ${req.sae} is not served by this KME`);
  };
  app.get('/api/v1/preferences', async (req) => {
    requireLocal(req);
    return { SAE_ID: req.sae, preferences: await opts.preferences.get(req.sae) };
  });
  app.post<{ Body: unknown }>('/api/v1/preferences/preference', async (req) => {
    const change = parsePreference(req.body);
    enforce(req, opts.access.checkAdmin(req.sae, req.caller.scopes));
    const sae = change.sae ?? req.sae;
    if (!opts.knownSae(sae)) throw badRequest(`unknown SAE ID: ${sae}`);
    req.saeLog.info({ target: sae, name: change.name, value: change.value }, 'preference changed');
    return { SAE_ID: sae, preferences: await opts.preferences.set(sae, change) };
  });
  app.get('/api/v1/information/info', (req) => {
    requireLocal(req);
    return opts.info();
  });
  if (opts.operator) {
    addOperatorRoutes(app, opts.operator, {
      requireAdmin: (req) => enforce(req, opts.access.checkAdmin(req.sae, req.caller.scopes)),
    });
  }

  return app;
}
