import { isIP } from 'node:net';
import { checkServerIdentity, connect, type PeerCertificate, type TLSSocket } from 'node:tls';
import type { Logger } from 'pino';
import { entityFromAltNames } from '../../auth/tls-identity.js';
import { peerRevoked, type CrlState } from '../../pki/crl.js';
import { RequestNotSent, StreamConnection, type Payload } from './connection.js';
import { STREAM_PATH, STREAM_PROTOCOL } from './server.js';

export interface PeerStreamClientOptions {
  readonly kmeId: string;
  readonly url: string;
  /** With the KME CA's revocation list (`crl`), the peer's certificate is checked against it. */
  readonly tls: { key: string | Buffer; cert: string | Buffer; ca: string | Buffer; crl?: string | Buffer };
  readonly log: Logger;
  /** Default time a request waits for its answer. */
  readonly timeoutMs?: number;
  readonly connectTimeoutMs?: number;
  readonly maxFrameBytes?: number;
}

/**
 * This KME's stream to one peer KME: connected on first use, again on the next request after a
 * failure or the peer's restart. The server must hold a KME certificate naming `kmeId`.
 */
export class PeerStreamClient {
  readonly #opts: PeerStreamClientOptions;
  #url: URL;
  #conn: Promise<StreamConnection> | undefined;
  /** Sockets of open connections, whose peer certificates a new revocation list is checked against. */
  readonly #sockets = new Set<TLSSocket>();
  #tls: PeerStreamClientOptions['tls'];
  #revoked: ReadonlySet<string> = new Set();
  #closed = false;

  constructor(opts: PeerStreamClientOptions) {
    this.#opts = opts;
    this.#tls = opts.tls;
    this.#url = new URL(opts.url);
  }

  /**
   * A new revocation list: later handshakes are verified against it, and an open connection whose
   * peer it names is closed (the peer was verified against the list before).
   */
  reloadCrl(crl: CrlState): void {
    this.#tls = { ...this.#tls, crl: crl.pem };
    this.#revoked = crl.revoked;
    if ([...this.#sockets].some((s) => peerRevoked(s, crl.revoked))) {
      this.#opts.log.warn({ peer: this.#opts.kmeId }, 'peer stream: the peer KME’s certificate is revoked; closed');
      // Destroyed, not ended: nothing more is sent to or taken from a revoked peer.
      for (const s of this.#sockets) s.destroy();
      this.#drop('the peer KME’s certificate was revoked');
    }
  }

  setUrl(url: string): void {
    this.#url = new URL(url);
    this.#drop('the stream was closed here');
  }

  /**
   * One request. When it fails with an error `reconnectOn` accepts, the connection it went over is
   * closed (other requests on it fail too), so that the next request connects afresh: behind a
   * site's load balancer, possibly to another replica of the peer KME.
   */
  async request(
    channel: string,
    payload: Payload,
    timeoutMs = this.#opts.timeoutMs ?? 5000,
    reconnectOn?: (err: unknown) => boolean,
  ): Promise<Buffer> {
    const attempt = this.#connection();
    const conn = await attempt;
    try {
      return await conn.request(channel, payload, timeoutMs);
    } catch (err) {
      // Only the connection that refused: one made since may have reached the right replica.
      if (reconnectOn?.(err) && this.#conn === attempt) this.#drop('reconnecting to reach another replica');
      throw err;
    }
  }

  close(): void {
    this.#closed = true;
    this.#drop('the stream was closed here');
  }

  #drop(reason: string): void {
    const conn = this.#conn;
    this.#conn = undefined;
    void conn?.then((c) => c.close(reason)).catch(() => undefined);
  }

  #connection(): Promise<StreamConnection> {
    if (this.#closed) return Promise.reject(new RequestNotSent('the peer stream is closed'));
    if (!this.#conn) {
      const attempt = this.#connect();
      this.#conn = attempt;
      attempt.then(
        (c) =>
          c.onClose(() => {
            if (this.#conn === attempt) this.#conn = undefined;
          }),
        () => this.#conn === attempt && (this.#conn = undefined),
      );
    }
    return this.#conn;
  }

  #connect(): Promise<StreamConnection> {
    const { kmeId, log } = this.#opts;
    const host = this.#url.hostname.replace(/^\[|\]$/g, '');
    const port = Number(this.#url.port || 443);
    const timeoutMs = this.#opts.connectTimeoutMs ?? this.#opts.timeoutMs ?? 5000;
    return new Promise((resolve, reject) => {
      let settled = false;
      const fail = (why: string) => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        socket.destroy();
        log.warn({ peer: kmeId, err: why }, 'peer stream: cannot connect');
        // Nothing is sent before the upgrade is answered: whatever went wrong, the peer has no request.
        reject(new RequestNotSent(`peer KME ${kmeId} is unreachable (${why}); try again later`));
      };
      const socket: TLSSocket = connect({
        host,
        port,
        ...(isIP(host) ? {} : { servername: host }),
        ...this.#tls,
        minVersion: 'TLSv1.3',
        checkServerIdentity: (name: string, cert: PeerCertificate) => {
          if (entityFromAltNames(cert.subjectaltname, 'kme') !== kmeId) {
            return new Error(`peer certificate does not belong to KME ${kmeId}`);
          }
          return checkServerIdentity(name, cert);
        },
      });
      const timer = setTimeout(() => fail('timed out'), timeoutMs);
      const onError = (err: Error) => fail(err.message);
      // In TLS 1.3 a server refuses the client's certificate after the client's handshake is done.
      const onClose = () => fail('the peer closed the connection');
      socket.once('error', onError);
      socket.once('close', onClose);
      socket.once('secureConnect', () => {
        socket.setNoDelay(true);
        socket.write(
          `GET ${STREAM_PATH} HTTP/1.1\r\nHost: ${this.#url.host}\r\nConnection: Upgrade\r\nUpgrade: ${STREAM_PROTOCOL}\r\n\r\n`,
        );
      });
      let head = Buffer.alloc(0);
      const onData = (chunk: Buffer) => {
        head = Buffer.concat([head, chunk]);
        const end = head.indexOf('\r\n\r\n');
        if (end < 0) {
          if (head.length > 8192) fail('bad answer to the upgrade');
          return;
        }
        socket.off('data', onData);
        // A list that came during the handshake: this peer was verified against the one before.
        if (peerRevoked(socket, this.#revoked)) return fail('the peer KME’s certificate is revoked');
        const status = head.toString('latin1', 0, head.indexOf('\r\n'));
        if (!/^HTTP\/1\.1 101 /.test(status)) return fail(`the peer answered ${status.slice(9, 60)}`);
        settled = true;
        clearTimeout(timer);
        // Only ours: Node's TLS socket has close listeners of its own.
        socket.off('error', onError);
        socket.off('close', onClose);
        const conn = new StreamConnection(
          socket,
          {
            peer: kmeId,
            log,
            ...(this.#opts.maxFrameBytes ? { maxFrameBytes: this.#opts.maxFrameBytes } : {}),
          },
          head.subarray(end + 4),
        );
        socket.setKeepAlive(true, 30_000);
        this.#sockets.add(socket);
        conn.onClose(() => this.#sockets.delete(socket));
        resolve(conn);
      };
      socket.on('data', onData);
    });
  }
}

/** One stream client per peer KME. */
export class PeerStreams {
  readonly #clients = new Map<string, PeerStreamClient>();
  #base: Omit<PeerStreamClientOptions, 'kmeId' | 'url'>;

  constructor(
    opts: Omit<PeerStreamClientOptions, 'kmeId' | 'url'> & { peers: ReadonlyArray<{ kmeId: string; url: string }> },
  ) {
    const { peers, ...base } = opts;
    this.#base = base;
    for (const p of peers) this.setPeerUrl(p.kmeId, p.url);
  }

  /** A new KME CA revocation list for every peer's stream (PeerStreamClient.reloadCrl). */
  reloadCrl(crl: CrlState): void {
    this.#base = { ...this.#base, tls: { ...this.#base.tls, crl: crl.pem } };
    for (const c of this.#clients.values()) c.reloadCrl(crl);
  }

  setPeerUrl(kmeId: string, url: string): void {
    const client = this.#clients.get(kmeId);
    if (client) client.setUrl(url);
    else this.#clients.set(kmeId, new PeerStreamClient({ ...this.#base, kmeId, url }));
  }

  request(
    kmeId: string,
    channel: string,
    payload: Payload,
    timeoutMs?: number,
    reconnectOn?: (err: unknown) => boolean,
  ): Promise<Buffer> {
    const client = this.#clients.get(kmeId);
    if (!client) return Promise.reject(new RequestNotSent(`no address configured for peer KME ${kmeId}`));
    return client.request(channel, payload, timeoutMs, reconnectOn);
  }

  close(): void {
    for (const c of this.#clients.values()) c.close();
  }
}
