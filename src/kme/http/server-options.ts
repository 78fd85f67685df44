import { LogController, type FastifyReply } from 'fastify';
import { sendEtsiError } from './etsi-errors.js';
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

/** Options both KME servers share: our own logger, and our own request log lines instead of Fastify's. */
export const serverOptions = (log: Logger) => ({
  loggerInstance: log,
  logController: new LogController({ disableRequestLogging: true }),
  routerOptions: { maxParamLength: 200 },
  // Random request IDs (`reqId` in every log line of a request), unique across restarts and KMEs.
  genReqId: randomRequestId,
  return503OnClosing: false,
  // Malformed URLs and over-long path IDs are refused before routing: still 400, never 414.
  frameworkErrors: (err: Error, _req: unknown, reply: FastifyReply) => sendEtsiError(reply, err),
});
