import { createServer, type AddressInfo, type Server, type Socket } from 'node:net';
import type { QkdParams } from './ero.js';
import { MAX_MESSAGE_BYTES } from './messages.js';
import type { MetricObject } from './objects.js';
import type { ComputedPath } from './path-request.js';
import { PcepSession } from './session.js';

/** The subset of a pino logger the PCE uses (pino's Logger fits). Key handles are IDs and may be logged. */
export interface PcepLogger {
  debug(obj: object, msg: string): void;
  info(obj: object, msg: string): void;
  warn(obj: object, msg: string): void;
  error(obj: object, msg: string): void;
}

/** What a PCC asked for in one request of a PCReq. */
export interface PathComputationRequest {
  readonly requestId: number;
  readonly source: string;
  readonly destination: string;
  /** The QKD parameters, when the request carried them (see path-request.ts). */
  readonly qkd: QkdParams | undefined;
  /** METRIC objects as sent; this library does not interpret them. */
  readonly metrics: readonly MetricObject[];
  /** The RP priority, 0 (none) to 7. */
  readonly priority: number;
}

export interface PceServerOptions {
  /** Computes a path; null (or a throw, which is logged) answers NO-PATH. */
  readonly computePath: (request: PathComputationRequest) => Promise<ComputedPath | null>;
  readonly log: PcepLogger;
  /** Default 4189 (RFC 5440 section 5); 0 picks a free port. */
  readonly port?: number;
  /** Default 127.0.0.1: exposing the PCE is the caller's decision. */
  readonly host?: string;
  /** Our Keepalive period and the DeadTimer we announce, in seconds (RFC 5440 defaults 30 and 120). */
  readonly keepaliveSeconds?: number;
  readonly deadTimerSeconds?: number;
  /** OpenWait and KeepWait (RFC 5440: 60 s each). */
  readonly openWaitMs?: number;
  readonly keepWaitMs?: number;
  readonly maxMessageBytes?: number;
}

export const PCEP_PORT = 4189;

/** A PCE listening for PCCs: one PcepSession per TCP connection. */
export class PceServer {
  readonly #sessions = new Set<PcepSession>();
  #nextSid = 0;

  private constructor(
    private readonly server: Server,
    private readonly opts: PceServerOptions,
  ) {}

  static async listen(opts: PceServerOptions): Promise<PceServer> {
    const keepalive = opts.keepaliveSeconds ?? 30;
    const deadTimer = opts.deadTimerSeconds ?? 120;
    for (const [v, what] of [
      [keepalive, 'keepalive'],
      [deadTimer, 'deadtimer'],
    ] as const) {
      if (!Number.isInteger(v) || v < 0 || v > 255) throw new TypeError(`${what} must be 0..255 seconds: ${v}`);
    }
    const server = createServer();
    const pce = new PceServer(server, opts);
    server.on('connection', (socket) =>
      pce.#accept(socket, { keepaliveSeconds: keepalive, deadTimerSeconds: deadTimer }),
    );
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(opts.port ?? PCEP_PORT, opts.host ?? '127.0.0.1', () => {
        server.off('error', reject);
        resolve();
      });
    });
    opts.log.info({ address: pce.address }, 'PCE listening');
    return pce;
  }

  get address(): { host: string; port: number } {
    const a = this.server.address() as AddressInfo;
    return { host: a.address, port: a.port };
  }

  /** Open sessions (for status and tests). */
  get sessions(): readonly PcepSession[] {
    return [...this.#sessions];
  }

  #accept(socket: Socket, timers: { keepaliveSeconds: number; deadTimerSeconds: number }): void {
    const sid = this.#nextSid;
    this.#nextSid = (this.#nextSid + 1) % 256;
    const log = this.opts.log;
    log.info({ remote: socket.remoteAddress, port: socket.remotePort, sid }, 'PCEP connection');
    const session = new PcepSession(
      socket,
      sid,
      { computePath: this.opts.computePath, maxMessageBytes: this.opts.maxMessageBytes ?? MAX_MESSAGE_BYTES },
      { ...timers, openWaitMs: this.opts.openWaitMs ?? 60_000, keepWaitMs: this.opts.keepWaitMs ?? 60_000 },
      log,
      (s) => this.#sessions.delete(s),
    );
    this.#sessions.add(session);
  }

  /** Stops listening, sends Close to every session and waits until their connections are gone. */
  async close(): Promise<void> {
    const closed = new Promise<void>((resolve) => this.server.close(() => resolve()));
    for (const s of this.#sessions) s.close();
    await closed;
  }
}
