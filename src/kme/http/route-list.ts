import type { FastifyInstance } from 'fastify';

/**
 * Records every route as `METHOD /path` (HEAD twins left out), for the OpenAPI check and operators.
 * RESTCONF resources are left out too: the YANG model describes them (docs/sdn.md), not OpenAPI.
 */
export function recordRoutes(app: FastifyInstance): string[] {
  const routes: string[] = [];
  app.addHook('onRoute', (route) => {
    if (route.url.startsWith('/restconf/')) return;
    for (const method of [route.method].flat()) if (method !== 'HEAD') routes.push(`${method} ${route.url}`);
  });
  return routes;
}

declare module 'fastify' {
  interface FastifyInstance {
    routeList: string[];
  }
}
