import type { Duplex } from 'node:stream';

/** Largest frame accepted; agreement messages are small, so anything bigger is an attack or a bug. */
export const MAX_FRAME_BYTES = 64 * 1024;
/**
 * Most messages read ahead of the reader: each message of the protocol waits for its answer, so a
 * peer that sends more ahead is refused (its connection cut) rather than queued without end.
 */
export const MAX_QUEUED_FRAMES = 8;

export class FramingError extends Error {
  override name = 'FramingError';
}

/** Writes one frame: a 4-byte big-endian length, then UTF-8 JSON. */
export function writeFrame(stream: Duplex, message: unknown, written?: (err?: Error | null) => void): void {
  const body = Buffer.from(JSON.stringify(message), 'utf8');
  if (body.length > MAX_FRAME_BYTES) throw new FramingError('message too large');
  const header = Buffer.alloc(4);
  header.writeUInt32BE(body.length);
  stream.write(Buffer.concat([header, body]), written);
}

/** Writes one frame and resolves once the stream has handed it on (rejects if the stream failed). */
export function writeFrameFlushed(stream: Duplex, message: unknown): Promise<void> {
  return new Promise((resolve, reject) => {
    if (!stream.writable) return reject(new FramingError('connection closed'));
    writeFrame(stream, message, (err) => (err ? reject(err) : resolve()));
  });
}

/**
 * Reads frames from a stream, one at a time. `next()` resolves with the next parsed message, or
 * rejects when the stream ends, errs, sends a malformed frame, or `timeoutMs` passes.
 */
export class FrameReader {
  #buffer = Buffer.alloc(0);
  #queue: unknown[] = [];
  #failure: Error | undefined;
  #wake: (() => void) | undefined;
  readonly #maxQueued: number;

  constructor(stream: Duplex, maxQueued = MAX_QUEUED_FRAMES) {
    this.#maxQueued = maxQueued;
    stream.on('data', (chunk: Buffer) => {
      this.#buffer = Buffer.concat([this.#buffer, chunk]);
      try {
        this.#drain();
      } catch (err) {
        this.#fail(err as Error);
        stream.destroy();
      }
      this.#wake?.();
    });
    stream.on('end', () => this.#fail(new FramingError('connection closed by peer')));
    stream.on('close', () => this.#fail(new FramingError('connection closed')));
    stream.on('error', (err) => this.#fail(err));
  }

  #fail(err: Error): void {
    this.#failure ??= err;
    this.#wake?.();
  }

  #drain(): void {
    while (this.#buffer.length >= 4) {
      const length = this.#buffer.readUInt32BE(0);
      if (length > MAX_FRAME_BYTES) throw new FramingError(`frame of ${length} bytes exceeds ${MAX_FRAME_BYTES}`);
      if (this.#buffer.length < 4 + length) return;
      const body = this.#buffer.subarray(4, 4 + length).toString('utf8');
      this.#buffer = this.#buffer.subarray(4 + length);
      try {
        this.#queue.push(JSON.parse(body));
      } catch {
        throw new FramingError('frame is not valid JSON');
      }
      if (this.#queue.length > this.#maxQueued) {
        throw new FramingError(`more than ${this.#maxQueued} messages sent ahead of their answers`);
      }
    }
  }

  async next(timeoutMs: number): Promise<unknown> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      if (this.#queue.length > 0) return this.#queue.shift();
      if (this.#failure) throw this.#failure;
      const left = deadline - Date.now();
      if (left <= 0) throw new FramingError(`no message from peer within ${timeoutMs} ms`);
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, left);
        this.#wake = () => {
          clearTimeout(timer);
          this.#wake = undefined;
          resolve();
        };
      });
    }
  }
}
