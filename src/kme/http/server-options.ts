import { LogController, type FastifyReply } from 'fastify';
import { sendEtsiError } from './etsi-errors.js';
import type { Logger } from 'pino';
import { randomBytes } from 'node:crypto';

/** Options both KME servers share: our own logger, and our own request log lines instead of Fastify's. */
export const serverOptions = (log: Logger) => ({
  loggerInstance: log,
  logController: new LogController({ disableRequestLogging: true }),
  routerOptions: { maxParamLength: 200 },
  // Random request IDs (`reqId` in every log line of a request), unique across restarts and KMEs.
  genReqId: () => randomBytes(6).toString('base64url'),
  return503OnClosing: false,
  // Malformed URLs and over-long path IDs are refused before routing: still 400, never 414.
  frameworkErrors: (err: Error, _req: unknown, reply: FastifyReply) => sendEtsiError(reply, err),
});
