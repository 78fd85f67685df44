import type { FastifyInstance } from 'fastify';
import { QksError } from '../../domain/errors.js';
import type { QkdLink } from '../../sources/qkd-link.js';
import { QKD_OPS } from '../../sources/qkd/wire.js';
import { obj } from '../../sources/qkd/wire.js';

export interface QkdLinkRoutesOptions {
  /** This KME's follower ends of QKD links, by link ID. */
  readonly ends: ReadonlyMap<string, QkdLink>;
  readonly leaderOf: (linkId: string) => string | undefined;
}

/**
 * The QKD link's post-processing on the KME-to-KME channel (docs/kme-channel.md): the link's
 * leader posts one message per step, this KME's end of the link answers. The peer API's own hook
 * has already checked that the caller is a configured peer KME; here it must also lead the link.
 */
export function registerQkdLinkRoutes(app: FastifyInstance, opts: QkdLinkRoutesOptions): void {
  for (const op of QKD_OPS) {
    app.post(`/kme/v1/qkd/${op}`, { bodyLimit: 64 * 1024 * 1024 }, async (req) => {
      const body = obj(req.body);
      const linkId = body['link_ID'];
      const end = typeof linkId === 'string' ? opts.ends.get(linkId) : undefined;
      if (!end || opts.leaderOf(linkId as string) !== req.peerKme) {
        throw new QksError('BAD_REQUEST', `no QKD link led by ${req.peerKme} ends here`);
      }
      return end.handle(op, body);
    });
  }
}
