import { EventEmitter } from 'node:events';
import {
  createConnection,
  createServer as createTcpServer,
  type AddressInfo,
  type Server,
  type Socket,
} from 'node:net';
import type { Duplex } from 'node:stream';
import { connect as tlsConnect, createServer as createTlsServer, type TLSSocket } from 'node:tls';
import type { KeyRing } from '../../sae/key-ring.js';
import { negotiatedServerMode, peekClientHello } from './client-hello.js';
import { PskKeSocket } from './psk-ke-client.js';
import { DEFAULT_CLOSE_GRACE_MS, endAtAge, splice } from './splice.js';
import {
  clientPskOptions,
  modeAcceptable,
  negotiatedMode,
  serverPskOptions,
  SERVER_GROUPS,
  type PskMode,
} from './psk-tls.js';

export interface Endpoint {
  readonly host: string;
  readonly port: number;
}

export interface TunnelEvents {
  /** One TLS connection up: the key ID it used and the mode the handshake negotiated. */
  connection: [{ keyId: string; mode: PskMode }];
  /** A connection refused or dropped, with the reason (never key material). */
  refused: [{ reason: string }];
  /** Plaintext carried under a key, either way (the client side counts it for rotation by bytes). */
  traffic: [{ keyId: string; bytes: number }];
  /** A connection reached its maximum age and is being ended gracefully. */
  aged: [{ keyId: string }];
}

/** Both sides: how long a connection may live on its key, and how long its graceful end may take. */
export interface ConnectionAgeOptions {
  /**
   * Longest life of one tunnelled connection (ms). Then this side stops taking data from its
   * local socket, flushes what it took, and ends the TLS connection; everything the other side
   * still sends is delivered, and the local socket is ended after it. The application sees its
   * TCP connection closed, as if the remote service had closed it, and reconnects with the
   * current key.
   */
  readonly maxConnectionAgeMs?: number;
  /** How long that graceful end, or delivery to a slow reader after a clean close, may take (ms). */
  readonly closeGraceMs?: number;
  /** At most this many connections at once; more are closed as they arrive (default: no limit). */
  readonly maxConnections?: number;
}

const HALF_OPEN = { allowHalfOpen: true } as const;

const peerOf = (s: Socket) => `${s.remoteAddress}|${s.remotePort}`;

abstract class Tunnel extends EventEmitter<TunnelEvents> {
  protected server: Server | undefined;
  protected readonly sockets = new Set<Duplex>();

  protected track(socket: Duplex): void {
    this.sockets.add(socket);
    socket.once('close', () => this.sockets.delete(socket));
  }

  protected async listenOn(server: Server, at: Endpoint, maxConnections?: number): Promise<Endpoint> {
    this.server = server;
    if (maxConnections !== undefined) server.maxConnections = maxConnections;
    server.on('drop', () => this.emit('refused', { reason: `more than ${maxConnections} connections` }));
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(at.port, at.host, () => resolve());
    });
    const addr = server.address() as AddressInfo;
    return { host: addr.address, port: addr.port };
  }

  /** Stops accepting, then closes every open connection. */
  async close(): Promise<void> {
    const closed = new Promise<void>((resolve) => (this.server ? this.server.close(() => resolve()) : resolve()));
    for (const s of this.sockets) s.destroy();
    await closed;
  }
}

export interface TunnelServerOptions extends ConnectionAgeOptions {
  readonly listen: Endpoint;
  /** Where the plaintext goes. */
  readonly target: Endpoint;
  readonly keys: KeyRing;
  readonly mode: PskMode;
}

/** The server side: TLS 1.3 with the pair's QKD keys as PSKs (identity = key ID), forwarded to a target. */
export class TunnelServer extends Tunnel {
  readonly #opts: TunnelServerOptions;
  readonly #identities = new WeakMap<TLSSocket, string>();
  /** The mode each connection's ClientHello will get, by its remote address and port. */
  readonly #modes = new Map<string, PskMode>();

  constructor(opts: TunnelServerOptions) {
    super();
    this.#opts = opts;
  }

  listen(): Promise<Endpoint> {
    const { keys, mode, target } = this.#opts;
    const tlsServer = createTlsServer({
      ...HALF_OPEN,
      ...serverPskOptions(mode),
      // Any key the ring still holds: a client may connect with the previous key for a moment.
      pskCallback: (socket, identity) => {
        const key = keys.get(identity);
        if (key) this.#identities.set(socket, identity);
        return key?.key ?? null;
      },
    });
    tlsServer.on('tlsClientError', (err) => this.emit('refused', { reason: err.message }));
    tlsServer.on('secureConnection', (tls: TLSSocket) => {
      this.track(tls);
      const negotiated = this.#modes.get(peerOf(tls));
      // A handshake that never asked for the external PSK resumed an earlier session: it is not
      // keyed from a current QKD key. (Node keeps no server session cache, so this should not
      // happen; the check makes sure.)
      const keyId = this.#identities.get(tls);
      if (keyId === undefined) {
        this.emit('refused', { reason: 'resumed session refused' });
        tls.destroy();
        return;
      }
      if (negotiated === undefined) {
        tls.destroy();
        return;
      }
      this.emit('connection', { keyId, mode: negotiated });
      const plain = createConnection({ ...target, ...HALF_OPEN });
      this.track(plain);
      const grace = this.#opts.closeGraceMs ?? DEFAULT_CLOSE_GRACE_MS;
      splice(tls, plain, grace);
      const { maxConnectionAgeMs } = this.#opts;
      if (maxConnectionAgeMs) endAtAge(tls, plain, maxConnectionAgeMs, grace, () => this.emit('aged', { keyId }));
    });
    // TCP first: the ClientHello is read (and put back) to learn the mode before TLS starts.
    const front = createTcpServer(HALF_OPEN, (raw) => {
      this.track(raw);
      raw.on('error', () => raw.destroy());
      peekClientHello(raw).then(
        (offer) => {
          const negotiated = negotiatedServerMode(offer, mode, SERVER_GROUPS[mode].ids);
          if (negotiated === undefined || !modeAcceptable(mode, negotiated)) {
            const weaker = offer.pskModes.includes(0) && !offer.pskModes.includes(1);
            const reason = weaker ? `client offers psk_ke only, weaker than ${mode}` : `no ${mode} handshake possible`;
            this.emit('refused', { reason });
            raw.destroy();
            return;
          }
          const peer = peerOf(raw);
          this.#modes.set(peer, negotiated);
          raw.once('close', () => this.#modes.delete(peer));
          tlsServer.emit('connection', raw);
        },
        (err: Error) => {
          this.emit('refused', { reason: err.message });
          raw.destroy();
        },
      );
    });
    return this.listenOn(front, this.#opts.listen, this.#opts.maxConnections);
  }
}

export interface TunnelClientOptions extends ConnectionAgeOptions {
  readonly listen: Endpoint;
  /** The tunnel server. */
  readonly server: Endpoint;
  readonly keys: KeyRing;
  readonly mode: PskMode;
}

/** The client side: accepts plaintext locally and carries it to the tunnel server. */
export class TunnelClient extends Tunnel {
  readonly #opts: TunnelClientOptions;

  constructor(opts: TunnelClientOptions) {
    super();
    this.#opts = opts;
  }

  listen(): Promise<Endpoint> {
    const server = createTcpServer(HALF_OPEN, (plain) => this.carry(plain));
    return this.listenOn(server, this.#opts.listen, this.#opts.maxConnections);
  }

  /** Carries one plaintext stream (a local connection, or stdin and stdout) to the tunnel server. */
  carry(plain: Duplex): void {
    this.track(plain);
    plain.on('error', () => plain.destroy()); // an application that resets its connection
    const { keys, mode } = this.#opts;
    // pskCallback is synchronous: the key must be in the ring already. Rotation agrees the next
    // key before the current one runs out, so there is always one.
    const key = keys.current();
    if (!key) {
      this.emit('refused', { reason: 'no current key' });
      plain.destroy();
      return;
    }
    plain.pause();
    // psk_ke offers psk_ke alone, with no key share (QKS's own TLS 1.3 client: OpenSSL 3.0 always
    // offers psk_dhe_ke too); psk_dhe_ke is OpenSSL's handshake, whose mode is checked below.
    const tls =
      mode === 'psk_ke'
        ? new PskKeSocket({ ...this.#opts.server, identity: key.keyId, key: key.key })
        : tlsConnect({
            ...HALF_OPEN,
            ...this.#opts.server,
            ...clientPskOptions(mode),
            pskCallback: () => ({ psk: key.key, identity: key.keyId }),
          });
    this.track(tls);
    let established = false;
    tls.once('secureConnect', () => {
      established = true;
      const negotiated = tls instanceof PskKeSocket ? 'psk_ke' : negotiatedMode(tls);
      if (!modeAcceptable(mode, negotiated)) {
        this.emit('refused', { reason: `negotiated ${negotiated}, weaker than ${mode}` });
        tls.destroy();
        plain.destroy();
        return;
      }
      this.emit('connection', { keyId: key.keyId, mode: negotiated });
      // Counted only for rotation by bytes: a listener per chunk costs the bulk path otherwise.
      if (this.listenerCount('traffic') > 0) {
        const carried = (chunk: Buffer) => this.emit('traffic', { keyId: key.keyId, bytes: chunk.length });
        plain.on('data', carried);
        tls.on('data', carried);
      }
      const grace = this.#opts.closeGraceMs ?? DEFAULT_CLOSE_GRACE_MS;
      splice(plain, tls, grace);
      const { maxConnectionAgeMs } = this.#opts;
      if (maxConnectionAgeMs) {
        endAtAge(tls, plain, maxConnectionAgeMs, grace, () => this.emit('aged', { keyId: key.keyId }));
      }
      plain.resume();
    });
    tls.once('error', (err) => {
      // Which step failed, under which key (ID only): a server that does not hold the key may
      // just close the connection, with no alert to say why (wolfSSL does).
      const step = established ? 'connection' : 'TLS handshake';
      this.emit('refused', { reason: `${step} under key ${key.keyId} failed: ${err.message}` });
      plain.destroy();
    });
  }
}
