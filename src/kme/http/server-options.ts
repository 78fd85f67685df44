import { LogController, type FastifyReply } from 'fastify';
import type { Server } from 'node:http';
import type { Socket } from 'node:net';
import { clientErrorResponse, sendEtsiError, unsupportedExpectation } from './etsi-errors.js';
import type { Logger } from 'pino';
import { randomBytes } from 'node:crypto';

const ID_BYTES = 6;
const IDS_PER_DRAW = 512;
let idPool = Buffer.alloc(0);
let nextId = 0;

/** A random request ID (48 bits); drawn from the generator in bulk, since a call per request cost more than the rest. */
function randomRequestId(): string {
  if (nextId + ID_BYTES > idPool.length) {
    idPool = randomBytes(ID_BYTES * IDS_PER_DRAW);
    nextId = 0;
  }
  return idPool.toString('base64url', nextId, (nextId += ID_BYTES));
}

/** Caps and timeouts of one HTTPS listener (`sae_api.connections`, `kme_api.connections`). */
export interface ListenerSettings {
  /** Open connections at most; more are closed as soon as they are accepted. */
  readonly max_connections?: number;
  /** Time for the TLS handshake, and then for each request's headers to arrive. */
  readonly headers_timeout_ms?: number;
  /** Time for a whole request (headers and body) to arrive; not the time to answer it. */
  readonly request_timeout_ms?: number;
  /** How long an idle kept-alive connection stays open. */
  readonly keep_alive_timeout_ms?: number;
  /** Largest request line and headers together; larger ones are refused with 400. */
  readonly max_header_bytes?: number;
}

export const LISTENER_DEFAULTS = {
  max_connections: 1024,
  headers_timeout_ms: 10_000,
  request_timeout_ms: 30_000,
  keep_alive_timeout_ms: 30_000,
  max_header_bytes: 16 * 1024,
} as const satisfies Required<ListenerSettings>;

/**
 * Options both KME servers share: our own logger and request log lines, the TLS settings, and caps
 * and timeouts so that slow or numerous clients cannot hold the listener (Node's defaults have no
 * request timeout and check the others only every 30 s). Whatever Node's HTTP parser refuses
 * (headers too large, malformed requests, time-outs) is a 400 with an ETSI Error body, never
 * Fastify's or Node's own 408, 413 or 431.
 */
export function serverOptions<T extends object>(log: Logger, https: T, listener: ListenerSettings = {}) {
  const s = { ...LISTENER_DEFAULTS, ...listener };
  return {
    https: {
      ...https,
      maxHeaderSize: s.max_header_bytes,
      headersTimeout: s.headers_timeout_ms,
      requestTimeout: s.request_timeout_ms,
      handshakeTimeout: s.headers_timeout_ms,
      // Node enforces the timeouts above only when it looks, by default every 30 s.
      connectionsCheckingInterval: Math.max(50, Math.min(1000, Math.floor(s.headers_timeout_ms / 4))),
    },
    requestTimeout: s.request_timeout_ms,
    keepAliveTimeout: s.keep_alive_timeout_ms,
    loggerInstance: log,
    logController: new LogController({ disableRequestLogging: true }),
    routerOptions: { maxParamLength: 200 },
    // Random request IDs (`reqId` in every log line of a request), unique across restarts and KMEs.
    genReqId: randomRequestId,
    return503OnClosing: false,
    // Malformed URLs and over-long path IDs are refused before routing: still 400, never 414.
    frameworkErrors: (err: Error, _req: unknown, reply: FastifyReply) => sendEtsiError(reply, err),
    clientErrorHandler: (err: NodeJS.ErrnoException, socket: Socket) => {
      if (err.code === 'ECONNRESET' || socket.destroyed) return;
      log.debug({ remote: socket.remoteAddress, code: err.code }, 'malformed or late request refused');
      // An answer already under way cannot be followed by another on the same connection.
      const answering = (socket as Socket & { _httpMessage?: { headersSent?: boolean } })._httpMessage?.headersSent;
      if (!socket.writable || answering) return void socket.destroy();
      socket.end(clientErrorResponse(err), () => socket.destroy());
    },
  };
}

/** What the server needs beyond its options: the connection cap, and 400 (not Node's 417) for an `Expect` it does not meet. */
export function guardListener(server: Server, listener: ListenerSettings = {}): void {
  server.maxConnections = listener.max_connections ?? LISTENER_DEFAULTS.max_connections;
  server.on('checkExpectation', (_req, res) => unsupportedExpectation(res));
}
