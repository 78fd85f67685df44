import type { SaState } from './gateway.js';
import { IpsecError } from './gateway.js';
import { ViciClient, ViciError } from './vici/client.js';
import type { ViciInput, ViciMessage } from './vici/message.js';

type Handler = (m: ViciMessage) => void;

/**
 * A session with strongSwan's charon over VICI, shared by both ways of running a connection (the
 * agent's own, or one an operator defined): it reconnects after charon restarts, tells its owner
 * so (a restarted charon holds nothing loaded over VICI), and keeps lasting event subscriptions.
 */
export class Charon {
  #vici: ViciClient | undefined;
  #ready = false;
  readonly #lasting: Array<[string, Handler]> = [];

  constructor(
    readonly uri: string,
    /** Called on each new connection after `ready()`: loads again what the owner keeps in charon. */
    private readonly onReconnect: () => Promise<void>,
  ) {}

  /** From now on, a new connection may be to a restarted charon. */
  ready(): void {
    this.#ready = true;
  }

  async client(): Promise<ViciClient> {
    if (this.#vici) return this.#vici;
    let vici: ViciClient;
    try {
      vici = await ViciClient.connect(this.uri);
    } catch (err) {
      throw new IpsecError('daemon_unavailable', `strongSwan: ${(err as Error).message}`);
    }
    this.#vici = vici;
    if (this.#ready) {
      await this.onReconnect();
      for (const [event, handler] of this.#lasting) await vici.subscribe(event, handler);
    }
    return vici;
  }

  /** A subscription that outlives reconnections. */
  async follow(event: string, handler: Handler): Promise<void> {
    this.#lasting.push([event, handler]);
    await (await this.client()).subscribe(event, handler);
  }

  /** Runs `body` with `handler` subscribed to `event` for its duration only. */
  async during<T>(event: string, handler: Handler, body: () => Promise<T>): Promise<T> {
    const vici = await this.client();
    await vici.subscribe(event, handler);
    try {
      return await body();
    } finally {
      await vici.unsubscribe(event, handler).catch(() => undefined);
    }
  }

  async call(command: string, message: ViciInput = {}): Promise<ViciMessage> {
    const vici = await this.client();
    try {
      return await vici.call(command, message);
    } catch (err) {
      if (!(err instanceof ViciError)) throw err;
      // A broken connection is dropped, so that the next call reconnects (charon restarted).
      if (/connection|socket/.test(err.message)) {
        this.#drop(vici);
        throw new IpsecError('daemon_unavailable', `strongSwan: ${err.message}`);
      }
      throw new IpsecError('daemon_error', `strongSwan: ${err.message}`);
    }
  }

  async stream(command: string, event: string, message: ViciInput = {}): Promise<ViciMessage[]> {
    const vici = await this.client();
    try {
      return await vici.stream(command, event, message);
    } catch (err) {
      this.#drop(vici);
      throw new IpsecError('daemon_unavailable', `strongSwan: ${(err as Error).message}`);
    }
  }

  /** The connection's definition as charon lists it, if loaded. */
  async connection(name: string): Promise<ViciMessage | undefined> {
    const conns = await this.stream('list-conns', 'list-conn', { ike: name });
    return conns.find((c) => name in c)?.[name] as ViciMessage | undefined;
  }

  /** IDs of the shared secrets charon holds that were loaded over VICI. */
  async sharedIds(): Promise<Set<string>> {
    const { keys } = await this.call('get-shared');
    return new Set(Array.isArray(keys) ? keys.map(String) : []);
  }

  /** Calls `onDown` with the unique ID of each IKE SA of `name` that goes down. */
  async watchDown(name: string, onDown: (ikeId: string) => void): Promise<void> {
    // `ike-updown`: `up = yes` when an SA comes up, absent when it goes down.
    await this.follow('ike-updown', (m) => {
      const sa = m[name] as ViciMessage | undefined;
      if (m['up'] !== 'yes' && sa && typeof sa['uniqueid'] === 'string') onDown(sa['uniqueid']);
    });
  }

  async sas(name: string): Promise<SaState[]> {
    const items = await this.stream('list-sas', 'list-sa', { ike: name });
    return items.flatMap((item) =>
      Object.values(item).map((v) => {
        const sa = v as ViciMessage;
        const children = Object.values((sa['child-sas'] as ViciMessage | undefined) ?? {}) as ViciMessage[];
        return {
          ikeId: String(sa['uniqueid']),
          state: String(sa['state']),
          ppk: sa['ppk'] === 'yes',
          bytes: children.reduce((n, c) => n + Number(c['bytes-in'] ?? 0) + Number(c['bytes-out'] ?? 0), 0),
          children: children.length,
        };
      }),
    );
  }

  async terminate(ikeId: string, timeoutMs: number): Promise<void> {
    try {
      await this.call('terminate', { 'ike-id': ikeId, timeout: timeoutMs });
    } catch (err) {
      // Already gone (the peer closed it, or the daemon restarted): what was asked for.
      if (!/no matching SAs/.test((err as Error).message)) throw err;
    }
  }

  #drop(vici: ViciClient): void {
    if (this.#vici === vici) this.#vici = undefined;
    vici.close();
  }

  close(): void {
    this.#vici?.close();
    this.#vici = undefined;
  }
}
