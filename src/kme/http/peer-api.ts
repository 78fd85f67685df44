import Fastify, { type FastifyInstance } from 'fastify';
import type { TLSSocket } from 'node:tls';
import type { Logger } from 'pino';
import { peerIdentity } from '../../auth/tls-identity.js';
import type { KeyService } from '../key-service.js';
import { acceptCancellations, acceptReservations } from '../peer-messages-service.js';
import { sendEtsiError } from './etsi-errors.js';
import { QksError } from '../../domain/errors.js';
import { acceptJsonBodies } from './json-body.js';
import { guardListener, serverOptions, type ListenerSettings } from './server-options.js';
import { recordRoutes } from './route-list.js';

export interface PeerApiOptions {
  readonly tls: { key: string | Buffer; cert: string | Buffer; ca: string | Buffer; crl?: string | Buffer };
  readonly peers: ReadonlySet<string>;
  readonly keys: KeyService;
  readonly log: Logger;
  /** Connection cap and timeouts (defaults in server-options.ts); peer streams count as connections. */
  readonly listener?: ListenerSettings;
}

declare module 'fastify' {
  interface FastifyRequest {
    peerKme: string;
  }
}

/**
 * The KME-to-KME channel's server side. It trusts only the KME CA, and only KMEs configured as
 * peers: an SAE certificate does not open it, even one from the same operator.
 */
/** Only KMEs with a certificate from the KME CA get through the handshake. */
export const PEER_TLS_OPTIONS = { requestCert: true, rejectUnauthorized: true, minVersion: 'TLSv1.3' } as const;

export function buildPeerApi(opts: PeerApiOptions): FastifyInstance {
  const app = Fastify({
    ...serverOptions(opts.log, { ...opts.tls, ...PEER_TLS_OPTIONS }, opts.listener),
    bodyLimit: 8 * 1024 * 1024,
  }) as unknown as FastifyInstance;
  guardListener(app.server, opts.listener);
  acceptJsonBodies(app);
  app.decorate('routeList', recordRoutes(app));
  app.decorateRequest('peerKme', '');

  app.addHook('onRequest', async (req, reply) => {
    const kme = peerIdentity(req.raw.socket as TLSSocket, 'kme');
    if (!kme || !opts.peers.has(kme)) {
      opts.log.warn({ remote: req.ip, kme }, 'refused on the KME channel: not a configured peer KME');
      return sendEtsiError(reply, new QksError('UNAUTHORIZED'));
    }
    req.peerKme = kme;
  });
  app.setErrorHandler((err, req, reply) => {
    req.log.warn({ peer: req.peerKme, message: (err as Error).message }, 'peer request refused');
    return sendEtsiError(reply, err);
  });

  app.post('/kme/v1/reservations', (req) => acceptReservations(opts.keys, req.peerKme, req.body, req.log));
  app.post('/kme/v1/cancellations', (req) => acceptCancellations(opts.keys, req.peerKme, req.body, req.log));
  return app;
}
