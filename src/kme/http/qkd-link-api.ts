import type { FastifyInstance } from 'fastify';
import { QksError } from '../../domain/errors.js';
import type { QkdLink } from '../../sources/qkd-link.js';
import { decodeEnvelope, encodeEnvelope, ENVELOPE_TYPE } from '../../sources/qkd/envelope.js';
import { QKD_OPS } from '../../sources/qkd/wire.js';

export interface QkdLinkRoutesOptions {
  /** This KME's follower ends of QKD links, by link ID. */
  readonly ends: ReadonlyMap<string, QkdLink>;
  readonly leaderOf: (linkId: string) => string | undefined;
}

const BODY_LIMIT = 64 * 1024 * 1024;

/**
 * The QKD link's post-processing on the KME-to-KME channel (docs/kme-channel.md): the link's
 * leader posts one message per step, this KME's end of the link answers. Bodies are binary
 * envelopes (envelope.ts); only these routes take them. The peer API's own hook has already
 * checked that the caller is a configured peer KME; here it must also lead the link.
 */
export function registerQkdLinkRoutes(app: FastifyInstance, opts: QkdLinkRoutesOptions): void {
  void app.register(async (scope) => {
    scope.addContentTypeParser(ENVELOPE_TYPE, { parseAs: 'buffer', bodyLimit: BODY_LIMIT }, (_req, body, done) => {
      try {
        done(null, decodeEnvelope(body as Buffer));
      } catch (err) {
        done(err as Error, undefined);
      }
    });
    for (const op of QKD_OPS) {
      scope.post(`/kme/v1/qkd/${op}`, { bodyLimit: BODY_LIMIT }, async (req, reply) => {
        if (req.headers['content-type'] !== ENVELOPE_TYPE) {
          throw new QksError('BAD_REQUEST', `QKD link messages must be ${ENVELOPE_TYPE}`);
        }
        const body = req.body as Record<string, unknown>;
        const linkId = body['link_ID'];
        const end = typeof linkId === 'string' ? opts.ends.get(linkId) : undefined;
        if (!end || opts.leaderOf(linkId as string) !== req.peerKme) {
          throw new QksError('BAD_REQUEST', `no QKD link led by ${req.peerKme} ends here`);
        }
        const answer = encodeEnvelope(await end.handle(op, body));
        return reply.type(ENVELOPE_TYPE).send(answer);
      });
    }
  });
}
