import type { FastifyInstance } from 'fastify';

/** Records every route as `METHOD /path` (HEAD twins left out), for the OpenAPI check and operators. */
export function recordRoutes(app: FastifyInstance): string[] {
  const routes: string[] = [];
  app.addHook('onRoute', (route) => {
    for (const method of [route.method].flat()) if (method !== 'HEAD') routes.push(`${method} ${route.url}`);
  });
  return routes;
}

declare module 'fastify' {
  interface FastifyInstance {
    routeList: string[];
  }
}
