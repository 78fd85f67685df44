import { QksError } from '../domain/errors.js';
import type { QkdLink } from '../sources/qkd-link.js';
import { decodeEnvelope, envelopeChannel, envelopeParts } from '../sources/qkd/envelope.js';
import type { LinkChannel } from '../sources/qkd/leader.js';
import { QKD_OPS } from '../sources/qkd/wire.js';
import type { StreamHandler } from './peer-stream/connection.js';
import type { PeerStreams } from './peer-stream/client.js';

/** How long a post-processing step may take at the other end (a frame's sifting is the longest). */
const QKD_TIMEOUT_MS = 30_000;

export interface QkdLinkChannelOptions {
  /** This KME's follower ends of QKD links, by link ID. */
  readonly ends: ReadonlyMap<string, QkdLink>;
  readonly leaderOf: (linkId: string) => string | undefined;
}

/**
 * The QKD link's post-processing on the peer stream (docs/kme-channel.md): one channel per step,
 * `qkd/<step>`, whose payloads are binary envelopes (envelope.ts). The stream has checked that the
 * caller is a configured peer KME; here it must also lead the link.
 */
export function qkdLinkHandlers(opts: QkdLinkChannelOptions): Map<string, StreamHandler> {
  const handlers = new Map<string, StreamHandler>();
  for (const op of QKD_OPS) {
    handlers.set(`qkd/${op}`, async (payload, peerKme) => {
      const body = decodeEnvelope(payload);
      const linkId = body['link_ID'];
      const end = typeof linkId === 'string' ? opts.ends.get(linkId) : undefined;
      if (!end || opts.leaderOf(linkId as string) !== peerKme) {
        throw new QksError('BAD_REQUEST', `no QKD link led by ${peerKme} ends here`);
      }
      return envelopeParts(await end.handle(op, body));
    });
  }
  return handlers;
}

/** The leader's channel to the follower at `peerKme`, over this KME's peer streams. */
export const qkdLinkChannel = (streams: PeerStreams, peerKme: string): LinkChannel =>
  envelopeChannel((op, body) => streams.request(peerKme, `qkd/${op}`, body, QKD_TIMEOUT_MS));
