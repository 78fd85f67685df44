/**
 * Frames of the peer stream (docs/kme-channel.md): a u32 LE length of what follows, then
 *   u8 kind (1 request, 2 response, 3 error) · u32 LE request ID · u8 channel length · channel · payload.
 * Only requests name a channel; an error's payload is UTF-8 JSON {code, message}.
 */

export const FRAME_REQUEST = 1;
export const FRAME_RESPONSE = 2;
export const FRAME_ERROR = 3;
export type FrameKind = typeof FRAME_REQUEST | typeof FRAME_RESPONSE | typeof FRAME_ERROR;

export interface Frame {
  readonly kind: FrameKind;
  readonly id: number;
  readonly channel: string;
  readonly payload: Buffer;
}

/** Channel names: short, printable, the same on both sides (`qkd/sifting`, `reservations`). */
export const CHANNEL_NAME = /^[a-z0-9][a-z0-9/_.-]{0,63}$/;
const FIXED = 6; // kind, id, channel length
export const DEFAULT_MAX_FRAME_BYTES = 64 * 1024 * 1024 + 1024;

export class FrameError extends Error {
  override name = 'FrameError';
}

/** The header of a frame; the payload is written after it as it is (no copy). */
export function frameHeader(kind: FrameKind, id: number, channel: string, payloadBytes: number): Buffer {
  const name = Buffer.from(channel, 'latin1');
  const header = Buffer.allocUnsafe(4 + FIXED + name.length);
  header.writeUInt32LE(FIXED + name.length + payloadBytes, 0);
  header[4] = kind;
  header.writeUInt32LE(id >>> 0, 5);
  header[9] = name.length;
  name.copy(header, 10);
  return header;
}

/** Reassembles frames from the chunks a socket delivers; throws FrameError at the first bad one. */
export class FrameReader {
  readonly #max: number;
  #chunks: Buffer[] = [];
  #buffered = 0;

  constructor(maxFrameBytes = DEFAULT_MAX_FRAME_BYTES) {
    this.#max = maxFrameBytes;
  }

  /** Adds a chunk and returns the frames it completes. */
  push(chunk: Buffer): Frame[] {
    if (chunk.length > 0) {
      this.#chunks.push(chunk);
      this.#buffered += chunk.length;
    }
    const frames: Frame[] = [];
    while (this.#buffered >= 4) {
      const length = this.#peekLength();
      if (length < FIXED || length > this.#max) throw new FrameError(`frame length ${length} out of range`);
      if (this.#buffered < 4 + length) break;
      frames.push(parse(this.#take(4 + length).subarray(4)));
    }
    return frames;
  }

  #peekLength(): number {
    const first = this.#chunks[0]!;
    if (first.length >= 4) return first.readUInt32LE(0);
    return this.#take(4, true).readUInt32LE(0);
  }

  /** The next n bytes, copied only when they span chunks; `peek` leaves them in place. */
  #take(n: number, peek = false): Buffer {
    const first = this.#chunks[0]!;
    let out: Buffer;
    if (first.length >= n) {
      out = first.subarray(0, n);
      if (!peek) {
        if (first.length === n) this.#chunks.shift();
        else this.#chunks[0] = first.subarray(n);
      }
    } else {
      out = Buffer.allocUnsafe(n);
      let at = 0;
      let i = 0;
      while (at < n) {
        const c = this.#chunks[i]!;
        const k = Math.min(c.length, n - at);
        c.copy(out, at, 0, k);
        at += k;
        if (peek) i++;
        else if (k === c.length) this.#chunks.shift();
        else this.#chunks[0] = c.subarray(k);
      }
    }
    if (!peek) this.#buffered -= n;
    return out;
  }
}

function parse(body: Buffer): Frame {
  const kind = body[0]!;
  if (kind !== FRAME_REQUEST && kind !== FRAME_RESPONSE && kind !== FRAME_ERROR) {
    throw new FrameError(`unknown frame kind ${kind}`);
  }
  const id = body.readUInt32LE(1);
  const nameLength = body[5]!;
  if (FIXED + nameLength > body.length) throw new FrameError('frame channel name is truncated');
  const channel = body.toString('latin1', FIXED, FIXED + nameLength);
  if (kind === FRAME_REQUEST ? !CHANNEL_NAME.test(channel) : nameLength !== 0) {
    throw new FrameError('frame has a bad channel name');
  }
  return { kind, id, channel, payload: body.subarray(FIXED + nameLength) };
}
