import type { IncomingMessage, Server } from 'node:http';
import type { Duplex } from 'node:stream';
import type { TLSSocket } from 'node:tls';
import type { Logger } from 'pino';
import { peerIdentity } from '../../auth/tls-identity.js';
import { StreamConnection, type StreamHandler } from './connection.js';

/** Where the stream is reached: an HTTP/1.1 upgrade on the KME channel's own listener. */
export const STREAM_PATH = '/kme/v1/stream';
export const STREAM_PROTOCOL = 'qks-peer-stream/1';

export interface PeerStreamServerOptions {
  /** KMEs allowed in (their certificate names them; the TLS handshake has checked the CA). */
  readonly peers: ReadonlySet<string>;
  readonly handlers: ReadonlyMap<string, StreamHandler>;
  readonly log: Logger;
  readonly maxFrameBytes?: number;
  readonly maxConcurrent?: number;
}

export interface PeerStreamServer {
  /** Open connections, by peer KME (for tests and status). */
  connections(): StreamConnection[];
  /** Closes every stream and refuses new ones (the HTTP server's close() leaves upgraded sockets alone). */
  close(): void;
}

const refuse = (socket: Duplex, status: string) =>
  socket.end(`HTTP/1.1 ${status}\r\nConnection: close\r\nContent-Length: 0\r\n\r\n`);

/**
 * Serves the peer stream on the mutual-TLS server of the KME channel: a configured peer KME asks
 * for an upgrade of `GET /kme/v1/stream`; anyone else gets 401 (SAE certificates do not even get
 * through the handshake, whose CA is the KME CA).
 */
export function attachPeerStream(server: Server, opts: PeerStreamServerOptions): PeerStreamServer {
  const open = new Set<StreamConnection>();
  let closing = false;
  server.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) => {
    socket.on('error', () => undefined);
    if (closing) return refuse(socket, '503 Service Unavailable');
    if (req.url !== STREAM_PATH || req.headers.upgrade?.toLowerCase() !== STREAM_PROTOCOL) {
      return refuse(socket, '400 Bad Request');
    }
    const kme = peerIdentity(socket as TLSSocket, 'kme');
    if (!kme || !opts.peers.has(kme)) {
      opts.log.warn({ remote: req.socket.remoteAddress, kme }, 'refused on the peer stream: not a configured peer KME');
      return refuse(socket, '401 Unauthorized');
    }
    socket.write(`HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: ${STREAM_PROTOCOL}\r\n\r\n`);
    (socket as TLSSocket).setNoDelay?.(true);
    const conn = new StreamConnection(
      socket,
      {
        peer: kme,
        handlers: opts.handlers,
        log: opts.log,
        ...(opts.maxFrameBytes ? { maxFrameBytes: opts.maxFrameBytes } : {}),
        ...(opts.maxConcurrent ? { maxConcurrent: opts.maxConcurrent } : {}),
      },
      head,
    );
    open.add(conn);
    conn.onClose(() => open.delete(conn));
    opts.log.info({ peer: kme }, 'peer stream open');
  });
  return {
    connections: () => [...open],
    close: () => {
      closing = true;
      for (const conn of [...open]) conn.close('the KME is stopping');
    },
  };
}
