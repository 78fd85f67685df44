import { connect, type Socket } from 'node:net';

/*
 * A minimal PCC for tests, written from RFC 5440 itself and sharing no code with src/sdn/pcep:
 * its own byte layouts, so that a bug in the production codec cannot hide in both sides.
 */

const u16 = (n: number) => [n >> 8, n & 0xff];
const u32 = (n: number) => [(n >>> 24) & 0xff, (n >> 16) & 0xff, (n >> 8) & 0xff, n & 0xff];
const ip = (a: string) => a.split('.').map(Number);

/** Common header: version 1 in the top 3 bits, no flags, type, length (RFC 5440 section 6.1). */
export function pcepMessage(type: number, ...objects: number[][]): Buffer {
  const body = objects.flat();
  return Buffer.from([0x20, type, ...u16(4 + body.length), ...body]);
}

/** Object header: class, object-type in the top 4 bits, P = 0x02, I = 0x01, length (section 7.2). */
export function pcepObject(cls: number, type: number, body: number[], p = false): number[] {
  return [cls, (type << 4) | (p ? 2 : 0), ...u16(4 + body.length), ...body];
}

export const openMessage = (keepalive: number, deadTimer: number, sid: number) =>
  pcepMessage(1, pcepObject(1, 1, [0x20, keepalive, deadTimer, sid]));
export const keepaliveMessage = () => pcepMessage(2);
export const closeMessage = (reason: number) => pcepMessage(7, pcepObject(15, 1, [0, 0, 0, reason]));

export const rpObject = (requestId: number, priority = 0, p = true) =>
  pcepObject(2, 1, [...u32(priority), ...u32(requestId)], p);
export const endPointsObject = (source: string, destination: string) =>
  pcepObject(4, 1, [...ip(source), ...ip(destination)], true);
/** VENDOR-INFORMATION (RFC 7470, class 34) with enterprise 32473 and the slides' eight QKD bytes. */
export const qkdObject = (
  keyLength: number,
  layer: number,
  refreshType: number,
  refreshValue: number,
  algorithm: number,
) =>
  pcepObject(
    34,
    1,
    [...u32(32473), ...u16(keyLength), layer, refreshType, ...u16(refreshValue), ...u16(algorithm)],
    true,
  );
export const errorObject = (type: number, value: number) => pcepObject(13, 1, [0, 0, type, value]);
export const ipv4Subobject = (address: string) => [1, 8, ...ip(address), 32, 0];

export interface ReceivedMessage {
  readonly type: number;
  readonly bytes: Buffer;
}

/** A TCP connection to the PCE that cuts what it receives into messages by their length field. */
export class TestPcc {
  readonly #queue: ReceivedMessage[] = [];
  readonly #waiting: Array<(m: ReceivedMessage) => void> = [];
  #buffer = Buffer.alloc(0);
  readonly closed: Promise<void>;

  private constructor(readonly socket: Socket) {
    socket.on('data', (chunk: Buffer) => {
      this.#buffer = Buffer.concat([this.#buffer, chunk]);
      while (this.#buffer.length >= 4 && this.#buffer.length >= this.#buffer.readUInt16BE(2)) {
        const length = this.#buffer.readUInt16BE(2);
        const m = { type: this.#buffer[1]!, bytes: this.#buffer.subarray(0, length) };
        this.#buffer = this.#buffer.subarray(length);
        const waiter = this.#waiting.shift();
        if (waiter) waiter(m);
        else this.#queue.push(m);
      }
    });
    socket.on('error', () => undefined);
    this.closed = new Promise((resolve) => socket.once('close', () => resolve()));
  }

  static connect(port: number, host = '127.0.0.1'): Promise<TestPcc> {
    return new Promise((resolve, reject) => {
      const socket = connect({ port, host }, () => resolve(new TestPcc(socket)));
      socket.once('error', reject);
    });
  }

  send(bytes: Buffer): void {
    this.socket.write(bytes);
  }

  /** The next message from the PCE; fails after `ms` or if the connection closes first. */
  next(ms = 5000): Promise<ReceivedMessage> {
    const queued = this.#queue.shift();
    if (queued) return Promise.resolve(queued);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`no PCEP message within ${ms} ms`)), ms);
      const take = (m: ReceivedMessage) => {
        clearTimeout(timer);
        resolve(m);
      };
      this.#waiting.push(take);
      void this.closed.then(() => {
        const at = this.#waiting.indexOf(take);
        if (at < 0) return;
        this.#waiting.splice(at, 1);
        clearTimeout(timer);
        reject(new Error('connection closed'));
      });
    });
  }

  /** Open, Keepalive both ways (RFC 5440 section 6.2); returns the PCE's Open. */
  async establish(keepalive = 30, deadTimer = 120): Promise<Buffer> {
    const theirOpen = await this.next();
    if (theirOpen.type !== 1) throw new Error(`expected Open, got type ${theirOpen.type}`);
    this.send(openMessage(keepalive, deadTimer, 7));
    const ack = await this.next();
    if (ack.type !== 2) throw new Error(`expected Keepalive, got type ${ack.type}`);
    this.send(keepaliveMessage());
    return theirOpen.bytes;
  }

  end(): void {
    this.socket.end();
  }
}
