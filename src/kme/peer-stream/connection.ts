import type { Duplex } from 'node:stream';
import type { Logger } from 'pino';
import { ERROR_TABLE, QksError, type ErrorCode } from '../../domain/errors.js';
import {
  CHANNEL_NAME,
  DEFAULT_MAX_FRAME_BYTES,
  FRAME_ERROR,
  FRAME_REQUEST,
  FRAME_RESPONSE,
  FrameReader,
  frameHeader,
  type Frame,
  type FrameKind,
} from './frames.js';

/** A frame's payload: one piece, or pieces written one after the other (never copied together). */
export type Payload = Uint8Array | readonly Uint8Array[];

/** Answers one request of a channel; a QksError's code and message go back to the caller. */
export type StreamHandler = (payload: Buffer, peerKme: string) => Promise<Payload> | Payload;

export interface ConnectionOptions {
  /** The authenticated KME at the other end. */
  readonly peer: string;
  /** Channels this side answers (the server's); a side without handlers only sends requests. */
  readonly handlers?: ReadonlyMap<string, StreamHandler>;
  readonly log: Logger;
  readonly maxFrameBytes?: number;
  /** Requests answered at once; beyond that this side stops reading the socket (back-pressure). */
  readonly maxConcurrent?: number;
}

/** A refusal or failure reported by the peer, with its error code. */
export class PeerStreamRefusal extends QksError {
  readonly peerCode: ErrorCode;
  constructor(peerCode: ErrorCode, message: string) {
    super('PEER_KME_UNAVAILABLE', message);
    this.peerCode = peerCode;
  }
}

/**
 * The request certainly never left this KME (no connection, or it failed before the request was
 * written): the peer cannot have acted on it. Anything else may have reached the peer.
 */
export class RequestNotSent extends QksError {
  constructor(message: string) {
    super('PEER_KME_UNAVAILABLE', message);
  }
}

interface Pending {
  resolve(payload: Buffer): void;
  reject(err: Error): void;
  timer: NodeJS.Timeout;
  /** Written to the socket: from then on the peer may have it. */
  sent: boolean;
}

/**
 * Request/response multiplexed over one socket: each request has an ID, answers come back in any
 * order. Writes wait while the socket's buffer is full; reads pause while too many requests are
 * being answered. A malformed frame closes the connection (every waiting request fails).
 */
export class StreamConnection {
  readonly peer: string;
  readonly #socket: Duplex;
  readonly #opts: ConnectionOptions;
  readonly #reader: FrameReader;
  readonly #pending = new Map<number, Pending>();
  readonly #closeListeners: Array<() => void> = [];
  #nextId = 1;
  #answering = 0;
  #paused = false;
  #closed = false;
  #closeReason = 'connection closed';
  #drained: Promise<void> | undefined;

  constructor(socket: Duplex, opts: ConnectionOptions, head?: Buffer) {
    this.peer = opts.peer;
    this.#socket = socket;
    this.#opts = opts;
    this.#reader = new FrameReader(opts.maxFrameBytes ?? DEFAULT_MAX_FRAME_BYTES);
    socket.on('data', (chunk: Buffer) => this.#onData(chunk));
    socket.on('error', (err) => this.#close(`connection failed: ${err.message}`));
    socket.on('close', () => this.#close(this.#closeReason));
    socket.on('end', () => socket.end());
    if (head && head.length > 0) queueMicrotask(() => this.#onData(head));
  }

  get closed(): boolean {
    return this.#closed;
  }

  onClose(listener: () => void): void {
    if (this.#closed) listener();
    else this.#closeListeners.push(listener);
  }

  /** Sends a request on `channel`; resolves with the answer's payload. */
  async request(channel: string, payload: Payload, timeoutMs: number): Promise<Buffer> {
    if (!CHANNEL_NAME.test(channel)) throw new TypeError(`bad channel name ${channel}`);
    if (this.#closed) throw this.#unavailable(this.#closeReason, false);
    const id = this.#nextId;
    this.#nextId = this.#nextId >= 0xffffffff ? 1 : this.#nextId + 1;
    const answer = new Promise<Buffer>((resolve, reject) => {
      const timer = setTimeout(() => {
        const sent = this.#pending.get(id)?.sent ?? true;
        this.#pending.delete(id);
        const reason = `no answer on ${channel} within ${timeoutMs} ms`;
        reject(this.#unavailable(reason, sent));
        // A silent peer is presumed gone (TCP keep-alive would take minutes to tell): the next
        // request opens a new connection instead of waiting on this one.
        this.close(`${reason}; connection dropped`);
      }, timeoutMs);
      this.#pending.set(id, { resolve, reject, timer, sent: false });
    });
    // The caller sees a timeout through `answer` even while this still waits to write.
    answer.catch(() => undefined);
    await this.#writable();
    // Not written if it timed out or the connection closed meanwhile.
    const pending = this.#pending.get(id);
    if (pending && !this.#closed) {
      pending.sent = true;
      this.#write(FRAME_REQUEST, id, channel, payload);
    }
    return answer;
  }

  /** Closes the connection; waiting requests fail with `reason`. */
  close(reason = 'connection closed'): void {
    this.#closeReason = reason;
    this.#socket.destroy();
    this.#close(reason);
  }

  #unavailable(reason: string, sent = true): QksError {
    const message = `peer KME ${this.peer}: ${reason}`;
    return sent ? new QksError('PEER_KME_UNAVAILABLE', message) : new RequestNotSent(message);
  }

  /** One wait for 'drain' shared by every writer held back (not a listener each); ends on close too. */
  #drain(): Promise<void> {
    if (!this.#drained) {
      const done = () => {
        this.#socket.off('drain', done);
        this.#closeListeners.splice(this.#closeListeners.indexOf(done) >>> 0, 1);
        this.#drained = undefined;
        resolve();
      };
      let resolve!: () => void;
      this.#drained = new Promise<void>((r) => (resolve = r));
      this.#socket.once('drain', done);
      this.#closeListeners.push(done);
    }
    return this.#drained;
  }

  async #writable(): Promise<void> {
    while (this.#socket.writableNeedDrain && !this.#closed) await this.#drain();
  }

  #write(kind: FrameKind, id: number, channel: string, payload: Payload): void {
    const socket = this.#socket;
    if (this.#closed) return;
    const parts = payload instanceof Uint8Array ? [payload] : payload;
    const bytes = parts.reduce((sum, p) => sum + p.byteLength, 0);
    // Header and payload in one go, never interleaved with another frame.
    socket.cork();
    socket.write(frameHeader(kind, id, channel, bytes));
    for (const part of parts) if (part.byteLength > 0) socket.write(part);
    socket.uncork();
  }

  #onData(chunk: Buffer): void {
    if (this.#closed) return;
    let frames: Frame[];
    try {
      frames = this.#reader.push(chunk);
    } catch (err) {
      this.#opts.log.warn({ peer: this.peer, err: (err as Error).message }, 'peer stream: bad frame, closing');
      return this.close(`bad frame from the peer: ${(err as Error).message}`);
    }
    for (const frame of frames) {
      if (frame.kind === FRAME_REQUEST) this.#answer(frame);
      else if (!this.#settle(frame)) return;
    }
  }

  /** Delivers an answer; an ID never used is a protocol error (a timed-out one is just late). */
  #settle(frame: Frame): boolean {
    const pending = this.#pending.get(frame.id);
    if (!pending) {
      if (frame.id === 0 || frame.id >= this.#nextId) {
        this.close('the peer answered a request never sent');
        return false;
      }
      return true;
    }
    this.#pending.delete(frame.id);
    clearTimeout(pending.timer);
    if (frame.kind === FRAME_RESPONSE) pending.resolve(frame.payload);
    else pending.reject(refusalOf(frame.payload, this.peer));
    return true;
  }

  #answer(frame: Frame): void {
    const handler = this.#opts.handlers?.get(frame.channel);
    this.#answering++;
    this.#backPressure();
    void (async () => {
      let kind: FrameKind = FRAME_RESPONSE;
      let out: Payload;
      try {
        if (!handler) throw new QksError('BAD_REQUEST', `no channel ${frame.channel} on this peer stream`);
        out = await handler(frame.payload, this.peer);
      } catch (err) {
        kind = FRAME_ERROR;
        const known = err instanceof QksError;
        if (!known)
          this.#opts.log.error(
            { peer: this.peer, channel: frame.channel, err: (err as Error).message },
            'peer stream handler failed',
          );
        const body = known
          ? { code: err.code, message: err.message }
          : { code: 'INTERNAL', message: ERROR_TABLE.INTERNAL.message };
        out = Buffer.from(JSON.stringify(body));
      }
      await this.#writable();
      this.#write(kind, frame.id, '', out);
      this.#answering--;
      this.#backPressure();
    })();
  }

  /** Stops reading while too many answers are being made or the socket's buffer is full. */
  #backPressure(): void {
    const full = this.#socket.writableNeedDrain;
    if (full || this.#answering >= (this.#opts.maxConcurrent ?? 64)) {
      if (!this.#paused) {
        this.#paused = true;
        this.#socket.pause();
      }
      // Looked at again once it drains: the last answer may have been what filled it.
      if (full) void this.#drain().then(() => this.#backPressure());
    } else if (this.#paused) {
      this.#paused = false;
      this.#socket.resume();
    }
  }

  #close(reason: string): void {
    if (this.#closed) return;
    this.#closed = true;
    for (const p of this.#pending.values()) {
      clearTimeout(p.timer);
      p.reject(this.#unavailable(reason, p.sent));
    }
    this.#pending.clear();
    for (const listener of this.#closeListeners.splice(0)) listener();
  }
}

function refusalOf(payload: Buffer, peer: string): Error {
  let code: ErrorCode = 'INTERNAL';
  let message = 'no reason given';
  try {
    const body = JSON.parse(payload.toString('utf8')) as { code?: unknown; message?: unknown };
    if (typeof body.code === 'string' && Object.hasOwn(ERROR_TABLE, body.code)) code = body.code as ErrorCode;
    if (typeof body.message === 'string') message = body.message.slice(0, 500);
  } catch {
    // An unreadable error body: the code stays INTERNAL.
  }
  return new PeerStreamRefusal(code, `peer KME ${peer} refused: ${message}`);
}
