import { randomUUID } from 'node:crypto';
import { join } from 'node:path';
import type { FastifyInstance } from 'fastify';
import type { Controller } from './controller.js';
import { serviceRequestProblem, ServiceStore, type ServiceRequest } from './services.js';

/**
 * `/api/v1/services` on the controller's API (docs/sdn.md#end-to-end-services): create computes
 * the path between the two SAEs' KMEs for the service's key length and, when it is relayed,
 * installs it in the source's KME as a virtual link; delete removes both.
 */
export function addServiceRoutes(
  app: FastifyInstance,
  controller: Controller,
  opts: { readonly stateDir: string; readonly kmeOfSae: ReadonlyMap<string, string> },
): void {
  const store = new ServiceStore(join(opts.stateDir, 'services.json'));
  app.get('/api/v1/services', async () => ({ services: store.list() }));
  app.get<{ Params: { id: string } }>('/api/v1/services/:id', async (req, reply) => {
    const s = store.get(req.params.id);
    return s ?? reply.code(404).send({ message: `no service ${req.params.id}` });
  });
  app.post('/api/v1/services', async (req, reply) => {
    const problem = serviceRequestProblem(req.body);
    if (problem) return reply.code(400).send({ message: problem });
    const body = req.body as ServiceRequest;
    const [from, to] = [opts.kmeOfSae.get(body.source), opts.kmeOfSae.get(body.destination)];
    if (!from || !to) {
      return reply.code(400).send({ message: `unknown SAE: ${!from ? body.source : body.destination}` });
    }
    if (from === to) {
      const service = store.add(body, [from]);
      return reply.code(201).send(service);
    }
    const [path] = controller.paths({ source: from, destination: to, bits: body.key_length * 8 });
    if (!path) return reply.code(409).send({ message: `no path from ${from} to ${to} meets the request now` });
    let virtualLink: string | undefined;
    if (path.nodes.length > 2) {
      virtualLink = randomUUID();
      try {
        await controller.install(virtualLink, path.nodes);
      } catch (err) {
        return reply.code(502).send({ message: `${from} refused the path: ${(err as Error).message}` });
      }
    }
    return reply.code(201).send(store.add(body, path.nodes, virtualLink));
  });
  app.post<{ Params: { id: string } }>('/api/v1/services/:id/handle', async (req, reply) => {
    const handle = (req.body as { key_ID?: unknown } | undefined)?.key_ID;
    if (typeof handle !== 'string' || handle.length === 0 || handle.length > 128) {
      return reply.code(400).send({ message: 'key_ID must be the first key ID of the service' });
    }
    const s = store.setHandle(req.params.id, handle);
    return s ?? reply.code(404).send({ message: `no service ${req.params.id}` });
  });
  app.delete<{ Params: { id: string } }>('/api/v1/services/:id', async (req, reply) => {
    const s = store.remove(req.params.id);
    if (!s) return reply.code(404).send({ message: `no service ${req.params.id}` });
    if (s.virtual_link) await controller.uninstall(s.virtual_link).catch(() => false);
    return reply.code(204).send();
  });
}
