import type { IpsecConnection, IpsecGateway, Ppk, SaState } from './gateway.js';
import { IpsecError } from './gateway.js';
import { ViciClient, ViciError } from './vici/client.js';
import type { ViciInput, ViciMessage } from './vici/message.js';

export interface StrongSwanOptions {
  /** charon's VICI socket, `unix:///path/charon.vici`. */
  readonly vici: string;
  readonly connection: IpsecConnection;
  /** How long an initiate may take before it counts as failed (default 10 s). */
  readonly timeoutMs?: number;
}

const CHILD = 'net';
/** A PPK_ID that names no PPK: with ppk_required, nothing authenticates against it. */
const NO_PPK_YET = 'qks-no-key-yet';
const sharedId = (kind: string, id: string) => `qks-${kind}-${id}`;

/**
 * strongSwan's charon over VICI: PPKs go in with `load-shared` (type `ppk`, owner = PPK_ID), the
 * connection is (re)loaded with `load-conn` naming the current PPK_ID, and each new PPK gets a new
 * IKE SA, since neither IKE nor CHILD rekeys bring a new PPK in.
 */
export class StrongSwanGateway implements IpsecGateway {
  readonly kind = 'strongswan' as const;
  readonly #o: StrongSwanOptions;
  #vici: ViciClient | undefined;
  #loaded = new Set<string>();
  /** The PPKs last asked for, to load again after an operator's `swanctl --load-all` removed them. */
  #ppks: readonly Ppk[] = [];
  #opened = false;
  #onDown: ((ikeId: string) => void) | undefined;

  constructor(options: StrongSwanOptions) {
    this.#o = options;
  }

  async #client(): Promise<ViciClient> {
    if (this.#vici) return this.#vici;
    let vici: ViciClient;
    try {
      vici = await ViciClient.connect(this.#o.vici);
    } catch (err) {
      throw new IpsecError('daemon_unavailable', `strongSwan: ${(err as Error).message}`);
    }
    this.#vici = vici;
    if (this.#opened) {
      // A new connection may be to a restarted charon, which holds nothing of ours.
      this.#loaded.clear();
      await this.#loadBasics();
      if (this.#onDown) await this.#follow(vici, this.#onDown);
    }
    return vici;
  }

  async watch(onDown: (ikeId: string) => void): Promise<void> {
    this.#onDown = onDown;
    await this.#follow(await this.#client(), onDown);
  }

  /** `ike-updown` events: `up = yes` when an SA comes up, absent when it goes down. */
  async #follow(vici: ViciClient, onDown: (ikeId: string) => void): Promise<void> {
    const name = this.#o.connection.name;
    await vici.subscribe('ike-updown', (m) => {
      const sa = m[name] as ViciMessage | undefined;
      if (m['up'] !== 'yes' && sa && typeof sa['uniqueid'] === 'string') onDown(sa['uniqueid']);
    });
  }

  async #call(command: string, message: ViciInput = {}): Promise<ViciMessage> {
    const vici = await this.#client();
    try {
      return await vici.call(command, message);
    } catch (err) {
      if (!(err instanceof ViciError)) throw err;
      // A broken connection is dropped, so that the next call reconnects (charon restarted).
      if (/connection|socket/.test(err.message)) {
        this.#vici = undefined;
        vici.close();
        throw new IpsecError('daemon_unavailable', `strongSwan: ${err.message}`);
      }
      throw new IpsecError('daemon_error', `strongSwan: ${err.message}`);
    }
  }

  async open(): Promise<void> {
    await this.#loadBasics();
    this.#opened = true;
  }

  async #loadBasics(): Promise<void> {
    const c = this.#o.connection;
    await this.#call('load-shared', {
      id: sharedId('ike', c.name),
      type: 'ike',
      data: c.ikeSecret,
      owners: [c.localId, c.remoteId],
    });
    // Known to the daemon before the first key: a peer that comes early is refused for want of
    // the PPK (AUTH_FAILED, retried), not for want of a connection.
    if (this.#loaded.size === 0) await this.#call('load-conn', this.#connection(NO_PPK_YET));
  }

  #connection(ppkId: string): ViciInput {
    const c = this.#o.connection;
    return {
      [c.name]: {
        version: 2,
        local_addrs: [c.localAddr],
        remote_addrs: [c.remoteAddr],
        proposals: [c.ikeProposal ?? 'aes256-sha256-x25519'],
        ppk_id: ppkId,
        ppk_required: c.ppkRequired,
        // Make-before-break needs two IKE SAs of the same peers at once.
        unique: 'no',
        local: { auth: 'psk', id: c.localId },
        remote: { auth: 'psk', id: c.remoteId },
        children: {
          [CHILD]: {
            local_ts: [c.localTs],
            remote_ts: [c.remoteTs],
            esp_proposals: [c.espProposal ?? 'aes256-sha256'],
          },
        },
      },
    };
  }

  async setPpks(ppks: readonly Ppk[]): Promise<void> {
    const current = ppks[ppks.length - 1];
    if (!current) throw new TypeError('no PPK to use');
    this.#ppks = ppks;
    for (const p of ppks) {
      if (this.#loaded.has(p.id)) continue;
      await this.#call('load-shared', { id: sharedId('ppk', p.id), type: 'ppk', data: p.key, owners: [p.id] });
      this.#loaded.add(p.id);
    }
    await this.#call('load-conn', this.#connection(current.id));
    const keep = new Set(ppks.map((p) => p.id));
    for (const id of [...this.#loaded].filter((id) => !keep.has(id))) {
      await this.#call('unload-shared', { id: sharedId('ppk', id) });
      this.#loaded.delete(id);
    }
  }

  /**
   * `swanctl --load-all` (the stock strongswan service runs it) unloads every connection and secret
   * that its files do not name: the agent's too; a restarted charon has none of them. This finds
   * out, and loads them again: true if it did.
   */
  async restoreIfUnloaded(): Promise<boolean> {
    if (!this.#opened) return false;
    const name = this.#o.connection.name;
    const vici = await this.#client();
    const conns = await vici.stream('list-conns', 'list-conn', { ike: name });
    const { keys } = await this.#call('get-shared');
    const held = new Set(Array.isArray(keys) ? keys.map(String) : []);
    // Against what was asked for, not what is thought loaded: a restarted charon holds nothing.
    const wanted = [sharedId('ike', name), ...this.#ppks.map((p) => sharedId('ppk', p.id))];
    if (conns.some((c) => name in c) && wanted.every((id) => held.has(id))) return false;
    this.#loaded.clear();
    await this.#loadBasics();
    if (this.#ppks.length > 0) await this.setPpks(this.#ppks);
    return true;
  }

  async establish(): Promise<string> {
    const vici = await this.#client();
    const name = this.#o.connection.name;
    const log: Array<{ msg: string; ike?: string }> = [];
    const onLog = (m: ViciMessage) => {
      if (m['ikesa-name'] === name) log.push({ msg: String(m['msg']), ike: m['ikesa-uniqueid'] as string });
    };
    await vici.subscribe('control-log', onLog);
    try {
      await this.#call('initiate', { ike: name, child: CHILD, timeout: this.#o.timeoutMs ?? 10_000 });
    } catch (err) {
      const authFailed = log.some((l) => /AUTHENTICATION_FAILED|AUTH_FAILED/.test(l.msg));
      const last = log.at(-1)?.msg;
      if (authFailed) {
        throw new IpsecError('auth_failed', `strongSwan: ${name}: the peer refused our authentication (AUTH_FAILED)`);
      }
      if (err instanceof IpsecError && err.code === 'daemon_unavailable') throw err;
      throw new IpsecError(
        'establish_failed',
        `strongSwan: ${name}: ${(err as Error).message}${last ? ` (${last})` : ''}`,
      );
    } finally {
      await vici.unsubscribe('control-log', onLog).catch(() => undefined);
    }
    const id = log.find((l) => l.ike)?.ike;
    if (!id) throw new IpsecError('establish_failed', `strongSwan: ${name}: no IKE SA reported`);
    return id;
  }

  async terminate(ikeId: string): Promise<void> {
    try {
      await this.#call('terminate', { 'ike-id': ikeId, timeout: this.#o.timeoutMs ?? 10_000 });
    } catch (err) {
      // Already gone (the peer closed it, or the daemon restarted): what was asked for.
      if (!/no matching SAs/.test((err as Error).message)) throw err;
    }
  }

  async sas(): Promise<SaState[]> {
    const vici = await this.#client();
    const name = this.#o.connection.name;
    let items: ViciMessage[];
    try {
      items = await vici.stream('list-sas', 'list-sa', { ike: name });
    } catch (err) {
      this.#vici = undefined;
      vici.close();
      throw new IpsecError('daemon_unavailable', `strongSwan: ${(err as Error).message}`);
    }
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

  async close(): Promise<void> {
    this.#vici?.close();
    this.#vici = undefined;
  }
}
