import { LogController } from 'fastify';
import type { Logger } from 'pino';

/** Options both KME servers share: our own logger, and our own request log lines instead of Fastify's. */
export const serverOptions = (log: Logger) => ({
  loggerInstance: log,
  logController: new LogController({ disableRequestLogging: true }),
  routerOptions: { maxParamLength: 200 },
  return503OnClosing: false,
});
