import Fastify, { type FastifyInstance, type FastifyRequest } from 'fastify';
import type { TLSSocket } from 'node:tls';
import type { Logger } from 'pino';
import { parseKeyIdQuery, parseKeyIds } from '../../domain/key-ids.js';
import { parseKeyRequest, parseKeyRequestQuery } from '../../domain/key-request.js';
import type { KeyLimits } from '../../domain/limits.js';
import { peerIdentity } from '../../auth/tls-identity.js';
import type { KeyService } from '../key-service.js';
import type { PreferenceService } from '../preference-service.js';
import { sendEtsiError, toEtsiError } from './etsi-errors.js';
import { QksError } from '../../domain/errors.js';
import { acceptJsonBodies } from './json-body.js';
import { serverOptions } from './server-options.js';

export interface SaeApiOptions {
  readonly tls: { key: string | Buffer; cert: string | Buffer; ca: string | Buffer };
  readonly keys: KeyService;
  readonly preferences: PreferenceService;
  readonly limits: KeyLimits;
  readonly info: () => Promise<unknown>;
  readonly log: Logger;
  readonly bodyLimit?: number;
}

declare module 'fastify' {
  interface FastifyRequest {
    sae: string;
    saeLog: Logger;
  }
}

type Params = { Params: { id: string }; Querystring: Record<string, unknown> };

/**
 * The ETSI GS QKD 014 key delivery API and the earlier QKS's extension endpoints. Every request
 * is authenticated by the SAE's client certificate before anything else runs.
 */
export function buildSaeApi(opts: SaeApiOptions): FastifyInstance {
  const app = Fastify({
    https: { ...opts.tls, requestCert: true, rejectUnauthorized: false, minVersion: 'TLSv1.2' },
    ...serverOptions(opts.log),
    bodyLimit: opts.bodyLimit ?? 64 * 1024,
  }) as unknown as FastifyInstance;
  acceptJsonBodies(app);
  app.decorateRequest('sae', '');
  app.decorateRequest('saeLog', null as unknown as Logger);

  app.addHook('onRequest', async (req, reply) => {
    const sae = peerIdentity(req.raw.socket as TLSSocket, 'sae');
    if (!sae) {
      opts.log.warn({ remote: req.ip, url: req.url }, 'refused: no valid SAE client certificate');
      return reply.code(401).send();
    }
    req.sae = sae;
    req.saeLog = opts.log.child({ sae }, { level: (await opts.preferences.get(sae)).log_level });
  });
  app.addHook('onResponse', async (req, reply) => {
    req.saeLog?.info(
      { method: req.method, url: req.url.split('?')[0], status: reply.statusCode, ms: Math.round(reply.elapsedTime) },
      'request',
    );
  });
  app.setErrorHandler((err, req, reply) => {
    const { status } = toEtsiError(err);
    if (status === 503 && !(err instanceof QksError)) req.log.error({ err }, 'internal error');
    else (req.saeLog ?? opts.log).info({ status, message: (err as Error).message }, 'request refused');
    return sendEtsiError(reply, err);
  });
  app.setNotFoundHandler((_req, reply) => reply.code(400).send({ message: 'no such endpoint' }));

  const keyContainerIds = (req: FastifyRequest, ids: string[]) => req.saeLog.debug({ key_IDs: ids }, 'keys delivered');

  app.get<Params>('/api/v1/keys/:id/status', (req) => opts.keys.status(req.sae, req.params.id));

  app.post<Params & { Body: unknown }>('/api/v1/keys/:id/enc_keys', async (req) => {
    const container = await opts.keys.getKeys(req.sae, req.params.id, parseKeyRequest(req.body, opts.limits));
    keyContainerIds(
      req,
      container.keys.map((k) => k.key_ID),
    );
    return container;
  });
  app.get<Params>('/api/v1/keys/:id/enc_keys', async (req) => {
    const container = await opts.keys.getKeys(req.sae, req.params.id, parseKeyRequestQuery(req.query, opts.limits));
    keyContainerIds(
      req,
      container.keys.map((k) => k.key_ID),
    );
    return container;
  });
  app.post<Params & { Body: unknown }>('/api/v1/keys/:id/dec_keys', (req) =>
    opts.keys.getKeysWithIds(req.sae, req.params.id, parseKeyIds(req.body, opts.limits.maxKeyPerRequest)),
  );
  app.get<Params>('/api/v1/keys/:id/dec_keys', (req) =>
    opts.keys.getKeysWithIds(req.sae, req.params.id, parseKeyIdQuery(req.query)),
  );

  app.get('/api/v1/preferences', async (req) => ({
    SAE_ID: req.sae,
    preferences: await opts.preferences.get(req.sae),
  }));
  app.post<{ Body: unknown }>('/api/v1/preferences/preference', async (req) => ({
    SAE_ID: req.sae,
    preferences: await opts.preferences.set(req.sae, req.body),
  }));
  app.get('/api/v1/information/info', () => opts.info());

  return app;
}
