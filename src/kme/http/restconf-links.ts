import type { FastifyReply } from 'fastify';
import { QksError } from '../../domain/errors.js';
import { nodeUuid } from '../../sdn/ids.js';
import { identity } from '../../sdn/node-model.js';
import { firstProblem, validateLinkWrite } from '../../sdn/node-schema.js';
import { entryOf, invalidValue, NODE_PATH, notFound, RestconfError, type Step } from '../../sdn/restconf.js';
import type { InstalledRoutes } from '../installed-routes.js';

/** What writing virtual links needs of the KME. */
export interface LinkWriteDeps {
  readonly kmeId: string;
  readonly routes: InstalledRoutes;
  /** KMEs this one shares a QKD link with: a path's first hop must be one. */
  readonly neighbours: () => readonly string[];
  /** Whether the node document shows a link of this ID (physical, or a relay this KME took part in). */
  readonly shows: (qkdlId: string) => Promise<boolean>;
}

interface LinkEntry {
  qkdl_id: string;
  qkdl_type: string;
  qkdl_local?: { qkdn_id?: string };
  qkdl_remote: { qkdn_id?: string };
  'qks-sdn-ext:path': string[];
}

/**
 * A virtual link a controller writes (centralized mode, docs/sdn.md): a relay path from this KME,
 * installed as a route that keys for its far end then take (installed-routes.ts).
 */
function checkedPath(d: LinkWriteDeps, entry: unknown): { id: string; path: string[] } {
  if ((entry as Partial<LinkEntry> | null)?.qkdl_type !== identity('VIRT')) {
    throw invalidValue('only virtual links (VIRT) can be written: physical links come from the configuration');
  }
  if (!validateLinkWrite(entry)) throw invalidValue(firstProblem(validateLinkWrite));
  const link = entry as LinkEntry;
  const me = nodeUuid(d.kmeId);
  if (link.qkdl_local?.qkdn_id !== undefined && link.qkdl_local.qkdn_id.toLowerCase() !== me) {
    throw invalidValue(`qkdl_local ${link.qkdl_local.qkdn_id} is not this node (${me})`);
  }
  const path = link['qks-sdn-ext:path'];
  if (nodeUuid(path.at(-1)!) !== link.qkdl_remote.qkdn_id?.toLowerCase()) {
    throw invalidValue(`the path ends at ${path.at(-1)}, not at qkdl_remote ${link.qkdl_remote.qkdn_id}`);
  }
  if (path[0] === d.kmeId && !d.neighbours().includes(path[1]!)) {
    throw invalidValue(`KME ${d.kmeId} has no QKD link to ${path[1]}, the path's first hop`);
  }
  return { id: link.qkdl_id.toLowerCase(), path };
}

/** Installs, replaces or removes one; throws RestconfErrors for what it refuses. */
export async function writeVirtualLink(
  d: LinkWriteDeps,
  method: string,
  steps: readonly Step[],
  body: unknown,
  reply: FastifyReply,
): Promise<FastifyReply> {
  const key = steps[1]?.key?.toLowerCase();
  const install = (id: string, path: string[]) => {
    try {
      return d.routes.install(id, path);
    } catch (err) {
      if (err instanceof QksError) throw invalidValue(err.message);
      throw err;
    }
  };
  if (method === 'POST' && steps.length === 1) {
    const { id, path } = checkedPath(d, entryOf(body, 'qkd_link'));
    if ((await d.shows(id)) || !install(id, path)) {
      throw new RestconfError(409, 'application', 'data-exists', `qkd_link ${id} exists already`);
    }
    return reply.code(201).header('location', `${NODE_PATH}/qkd_links/qkd_link=${id}`).send();
  }
  if (method === 'PUT' && key !== undefined) {
    const { id, path } = checkedPath(d, entryOf(body, 'qkd_link'));
    if (id !== key) throw invalidValue(`qkdl_id ${id} is not the ${key} of the path`);
    if (!d.routes.get(id) && (await d.shows(id))) throw readOnly();
    const replaced = d.routes.remove(id);
    install(id, path);
    return reply.code(replaced ? 204 : 201).send();
  }
  if (method === 'DELETE' && key !== undefined) {
    if (d.routes.remove(key)) return reply.code(204).send();
    if (await d.shows(key)) throw readOnly();
    throw notFound(`qkd_links/qkd_link=${key}`);
  }
  throw new RestconfError(405, 'protocol', 'operation-not-supported', `${method} is not allowed here`, allowed(steps));
}

const readOnly = () =>
  new RestconfError(
    405,
    'protocol',
    'operation-not-supported',
    'this link is not one a controller installed: physical links and relays seen here cannot be written',
    'GET, HEAD',
  );

export const allowed = (steps: readonly Step[]) =>
  steps.length === 1 ? 'GET, HEAD, POST' : steps[1]?.key !== undefined ? 'GET, HEAD, PUT, DELETE' : 'GET, HEAD';
