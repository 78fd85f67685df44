import { connect, type Socket } from 'node:net';
import { decodeMessage, encodeMessage, type ViciInput, type ViciMessage } from './message.js';

// Packet types (VICI README, "Packet layer").
const CMD_REQUEST = 0;
const CMD_RESPONSE = 1;
const CMD_UNKNOWN = 2;
const EVENT_REGISTER = 3;
const EVENT_UNREGISTER = 4;
const EVENT_CONFIRM = 5;
const EVENT_UNKNOWN = 6;
const EVENT = 7;
/** charon refuses larger packets; so do we. */
const MAX_PACKET = 512 * 1024;

/** The daemon could not be reached, refused a command, or broke the protocol. */
export class ViciError extends Error {}

type Reply = { type: number; message: ViciMessage };
type EventHandler = (message: ViciMessage) => void;

/**
 * A client of charon's VICI socket. One request at a time is in flight (the daemon answers in
 * order); events for registered names arrive in between and go to their handlers.
 */
export class ViciClient {
  readonly #socket: Socket;
  readonly #path: string;
  readonly #waiting: Array<{ resolve: (r: Reply) => void; reject: (e: Error) => void }> = [];
  readonly #handlers = new Map<string, Set<EventHandler>>();
  #buffer = Buffer.alloc(0);
  #queue: Promise<unknown> = Promise.resolve();
  #closed: Error | undefined;

  private constructor(socket: Socket, path: string) {
    this.#socket = socket;
    this.#path = path;
    socket.on('data', (d: Buffer) => this.#onData(d));
    socket.on('error', (err) => this.#fail(new ViciError(`VICI socket ${path}: connection failed: ${err.message}`)));
    socket.on('close', () => this.#fail(new ViciError(`VICI socket ${path}: connection closed by the daemon`)));
  }

  /** Connects to `unix:///path` or a plain path. */
  static async connect(uri: string, timeoutMs = 5000): Promise<ViciClient> {
    const path = uri.replace(/^unix:\/\//, '');
    const socket = await new Promise<Socket>((resolve, reject) => {
      const s = connect({ path });
      const timer = setTimeout(() => (s.destroy(), reject(new ViciError(`VICI socket ${path}: no answer`))), timeoutMs);
      s.once('connect', () => (clearTimeout(timer), resolve(s)));
      s.once('error', (err: NodeJS.ErrnoException) => {
        clearTimeout(timer);
        const why =
          err.code === 'ENOENT'
            ? 'no such socket (is charon running with the vici plugin?)'
            : err.code === 'ECONNREFUSED'
              ? 'connection refused (charon is not running)'
              : err.message;
        reject(new ViciError(`VICI socket ${path}: ${why}`));
      });
    });
    return new ViciClient(socket, path);
  }

  /** Sends a command and returns its response; fails if the daemon says `success = no`. */
  async call(command: string, message: ViciInput = {}): Promise<ViciMessage> {
    const res = await this.#exchange(CMD_REQUEST, command, message);
    if (res.type === CMD_UNKNOWN) throw new ViciError(`charon does not know the VICI command ${command}`);
    if (res.message['success'] === 'no') {
      throw new ViciError(`${command} failed: ${String(res.message['errmsg'] ?? 'no reason given')}`);
    }
    return res.message;
  }

  /** A command that streams its results as `event` messages (list-sas, list-conns, ...). */
  async stream(command: string, event: string, message: ViciInput = {}): Promise<ViciMessage[]> {
    const items: ViciMessage[] = [];
    const collect = (m: ViciMessage) => items.push(m);
    await this.subscribe(event, collect);
    try {
      await this.call(command, message);
    } finally {
      await this.unsubscribe(event, collect);
    }
    return items;
  }

  async subscribe(event: string, handler: EventHandler): Promise<void> {
    let set = this.#handlers.get(event);
    if (!set) {
      set = new Set();
      this.#handlers.set(event, set);
      const res = await this.#exchange(EVENT_REGISTER, event);
      if (res.type !== EVENT_CONFIRM) throw new ViciError(`charon refused to register the event ${event}`);
    }
    set.add(handler);
  }

  async unsubscribe(event: string, handler: EventHandler): Promise<void> {
    const set = this.#handlers.get(event);
    if (!set?.delete(handler) || set.size > 0) return;
    this.#handlers.delete(event);
    if (!this.#closed) await this.#exchange(EVENT_UNREGISTER, event);
  }

  close(): void {
    this.#closed ??= new ViciError('VICI client closed');
    this.#socket.destroy();
  }

  #exchange(type: number, name: string, message?: ViciInput): Promise<Reply> {
    const run = () =>
      new Promise<Reply>((resolve, reject) => {
        if (this.#closed) return reject(this.#closed);
        const n = Buffer.from(name, 'ascii');
        const body = Buffer.concat([
          Buffer.from([type, n.length]),
          n,
          message === undefined ? Buffer.alloc(0) : encodeMessage(message),
        ]);
        if (body.length > MAX_PACKET) return reject(new ViciError(`VICI ${name}: request too large`));
        const len = Buffer.alloc(4);
        len.writeUInt32BE(body.length);
        this.#waiting.push({ resolve, reject });
        this.#socket.write(Buffer.concat([len, body]));
      });
    const result = this.#queue.then(run, run);
    this.#queue = result.catch(() => undefined);
    return result;
  }

  #onData(data: Buffer): void {
    this.#buffer = Buffer.concat([this.#buffer, data]);
    while (this.#buffer.length >= 4) {
      const len = this.#buffer.readUInt32BE(0);
      if (len > MAX_PACKET || len < 1)
        return this.#fail(new ViciError(`VICI socket ${this.#path}: a packet of ${len} bytes`));
      if (this.#buffer.length < 4 + len) return;
      const packet = this.#buffer.subarray(4, 4 + len);
      this.#buffer = this.#buffer.subarray(4 + len);
      try {
        this.#onPacket(packet);
      } catch (err) {
        return this.#fail(new ViciError(`VICI socket ${this.#path}: bad packet: ${(err as Error).message}`));
      }
    }
  }

  #onPacket(packet: Buffer): void {
    const type = packet[0]!;
    if (type === EVENT) {
      const nameLen = packet[1]!;
      const name = packet.toString('ascii', 2, 2 + nameLen);
      const message = decodeMessage(packet.subarray(2 + nameLen));
      for (const h of this.#handlers.get(name) ?? []) h(message);
      return;
    }
    if (![CMD_RESPONSE, CMD_UNKNOWN, EVENT_CONFIRM, EVENT_UNKNOWN].includes(type)) {
      throw new Error(`unexpected packet type ${type}`);
    }
    const waiter = this.#waiting.shift();
    if (!waiter) throw new Error('an answer nobody asked for');
    waiter.resolve({ type, message: type === CMD_RESPONSE ? decodeMessage(packet.subarray(1)) : {} });
  }

  #fail(err: Error): void {
    this.#closed ??= err;
    this.#socket.destroy();
    for (const w of this.#waiting.splice(0)) w.reject(err);
  }
}
