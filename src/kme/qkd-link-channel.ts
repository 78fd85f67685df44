import { QksError } from '../domain/errors.js';
import type { QkdLink } from '../sources/qkd-link.js';
import { decodeEnvelope, envelopeChannel, envelopeParts } from '../sources/qkd/envelope.js';
import type { LinkChannel } from '../sources/qkd/leader.js';
import { QKD_OPS } from '../sources/qkd/wire.js';
import { PeerStreamRefusal, type StreamHandler } from './peer-stream/connection.js';
import type { PeerStreams } from './peer-stream/client.js';

/** How long a post-processing step may take at the other end (a frame's sifting is the longest). */
const QKD_TIMEOUT_MS = 30_000;

export interface QkdLinkChannelOptions {
  /** This KME's follower ends of QKD links, by link ID. */
  readonly ends: ReadonlyMap<string, QkdLink>;
  readonly leaderOf: (linkId: string) => string | undefined;
  /**
   * Answers a message of a link this KME follows, as the replica that runs the link's follower
   * end (RequestOwner.serve); absent: this process runs every link.
   */
  readonly serve?: <T>(linkId: string, answer: () => Promise<T>) => Promise<T>;
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
      const answer = () => end.handle(op, body);
      return envelopeParts(await (opts.serve ? opts.serve(linkId as string, answer) : answer()));
    });
  }
  return handlers;
}

/** A replica of the peer KME that does not run the link's follower end refused (RequestOwner). */
const ownedElsewhere = (err: unknown) => err instanceof PeerStreamRefusal && err.peerCode === 'LINK_OWNED_ELSEWHERE';

/**
 * The leader's channel to the follower at `peerKme`, over this KME's peer streams. Refused by a
 * replica that does not run the follower end, it reconnects: the peer site's load balancer sends
 * the new connection to the next replica.
 */
export const qkdLinkChannel = (streams: PeerStreams, peerKme: string): LinkChannel =>
  envelopeChannel((op, body) => streams.request(peerKme, `qkd/${op}`, body, QKD_TIMEOUT_MS, ownedElsewhere));
