import { randomBytes, timingSafeEqual } from 'node:crypto';
import { isIP } from 'node:net';
import type { AddressInfo } from 'node:net';
import Fastify, { LogController, type FastifyReply, type FastifyRequest } from 'fastify';
import type { Logger } from 'pino';
import { EventStreams } from './sse.js';
import { dashboardFiles } from './static-files.js';
import type { NetworkView } from './network.js';

export interface DashboardServerOptions {
  /** Loopback only: elsewhere operators use a KME's own /dashboard/ with their certificate. */
  readonly host?: string;
  readonly port?: number;
  readonly view: () => Promise<NetworkView>;
  readonly log: Logger;
  readonly intervalMs?: number;
  /** The access token the URL carries; a random one when left out. */
  readonly token?: string;
}

export interface RunningDashboard {
  /** Open this: it carries the access token, which the page then keeps in a cookie. */
  readonly url: string;
  /** The address without the token (refused without it). */
  readonly origin: string;
  close(): Promise<void>;
}

const COOKIE = 'qks_dashboard';

export const isLoopback = (host: string): boolean =>
  host === 'localhost' || host === '::1' || (isIP(host) === 4 && host.startsWith('127.'));

/**
 * `qks dashboard`: the dashboard for several KMEs, served over plain HTTP on loopback only. The
 * process itself talks to the KMEs as an administrator; its page is opened with a random token
 * (as Jupyter does), so other users of the same machine cannot read it either.
 */
export async function startDashboardServer(opts: DashboardServerOptions): Promise<RunningDashboard> {
  const host = opts.host ?? '127.0.0.1';
  if (!isLoopback(host)) {
    throw new Error(
      `the dashboard server listens on loopback only, not ${host}; elsewhere open a KME's /dashboard/ with an operator certificate`,
    );
  }
  const token = Buffer.from(opts.token ?? randomBytes(18).toString('base64url'));
  const files = dashboardFiles();
  const streams = new EventStreams();
  const app = Fastify({
    loggerInstance: opts.log.child({ component: 'dashboard' }),
    logController: new LogController({ disableRequestLogging: true }),
  });
  app.addHook('preClose', async () => streams.closeAll());

  const presented = (req: FastifyRequest): string | undefined => {
    const query = (req.query as Record<string, unknown>)['token'];
    if (typeof query === 'string') return query;
    const bearer = /^Bearer (\S+)$/i.exec(req.headers.authorization ?? '')?.[1];
    if (bearer) return bearer;
    return (req.headers.cookie ?? '')
      .split(';')
      .map((c) => c.trim().split('='))
      .find(([name]) => name === COOKIE)?.[1];
  };
  const valid = (given: string | undefined) => {
    if (given === undefined) return false;
    const b = Buffer.from(given);
    return b.length === token.length && timingSafeEqual(b, token);
  };
  app.addHook('onRequest', async (req, reply) => {
    if (valid(presented(req))) return;
    req.log.warn({ remote: req.ip, url: req.url.split('?')[0] }, 'dashboard refused: no valid access token');
    return reply
      .code(401)
      .type('text/plain')
      .send('open the URL that qks dashboard printed (it carries the access token)\n');
  });
  const page = (req: FastifyRequest, reply: FastifyReply) => {
    const query = (req.query as Record<string, unknown>)['token'];
    if (typeof query === 'string') {
      reply.header('set-cookie', `${COOKIE}=${query}; Path=/; HttpOnly; SameSite=Strict`);
    }
    return files.send(reply, 'index.html');
  };
  app.get('/', (req, reply) => reply.redirect(`/dashboard/${req.url.slice(1)}`));
  app.get('/dashboard/', page);
  app.get<{ Params: { file: string } }>('/dashboard/:file', (req, reply) =>
    files.has(req.params.file) ? files.send(reply, req.params.file) : reply.code(404).send(),
  );
  app.get('/api/v1/admin/network', () => opts.view());
  app.get('/api/v1/admin/events', (req, reply) => streams.serve(req, reply, opts.view, opts.intervalMs ?? 1000));

  await app.listen({ host, port: opts.port ?? 0 });
  const { port } = app.server.address() as AddressInfo;
  const origin = `http://${host.includes(':') ? `[${host}]` : host}:${port}`;
  return {
    url: `${origin}/dashboard/?token=${token.toString()}`,
    origin,
    close: () => app.close(),
  };
}
