import { Charon } from './charon.js';
import type { IpsecConnection, IpsecGateway, Ppk, SaState } from './gateway.js';
import { IpsecError } from './gateway.js';
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
 * strongSwan's charon over VICI, with a connection the agent defines: PPKs go in with
 * `load-shared` (type `ppk`, owner = PPK_ID), the connection is (re)loaded with `load-conn` naming
 * the current PPK_ID, and each new PPK gets a new IKE SA, since neither IKE nor CHILD rekeys bring
 * a new PPK in. (An operator's own connection: strongswan-attached.ts.)
 */
export class StrongSwanGateway implements IpsecGateway {
  readonly kind = 'strongswan' as const;
  readonly #o: StrongSwanOptions;
  readonly #charon: Charon;
  #loaded = new Set<string>();
  /** The PPKs last asked for, to load again after an operator's `swanctl --load-all` removed them. */
  #ppks: readonly Ppk[] = [];
  #opened = false;

  constructor(options: StrongSwanOptions) {
    this.#o = options;
    // A new connection may be to a restarted charon, which holds nothing of ours.
    this.#charon = new Charon(options.vici, async () => {
      this.#loaded.clear();
      await this.#loadBasics();
    });
  }

  async watch(onDown: (ikeId: string) => void): Promise<void> {
    await this.#charon.watchDown(this.#o.connection.name, onDown);
  }

  async open(): Promise<void> {
    await this.#loadBasics();
    this.#opened = true;
    this.#charon.ready();
  }

  async #loadBasics(): Promise<void> {
    const c = this.#o.connection;
    await this.#charon.call('load-shared', {
      id: sharedId('ike', c.name),
      type: 'ike',
      data: c.ikeSecret,
      owners: [c.localId, c.remoteId],
    });
    // Known to the daemon before the first key: a peer that comes early is refused for want of
    // the PPK (AUTH_FAILED, retried), not for want of a connection.
    if (this.#loaded.size === 0) await this.#charon.call('load-conn', this.#connection(NO_PPK_YET));
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
      await this.#charon.call('load-shared', { id: sharedId('ppk', p.id), type: 'ppk', data: p.key, owners: [p.id] });
      this.#loaded.add(p.id);
    }
    await this.#charon.call('load-conn', this.#connection(current.id));
    const keep = new Set(ppks.map((p) => p.id));
    for (const id of [...this.#loaded].filter((id) => !keep.has(id))) {
      await this.#charon.call('unload-shared', { id: sharedId('ppk', id) });
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
    const conn = await this.#charon.connection(name);
    const held = await this.#charon.sharedIds();
    // Against what was asked for, not what is thought loaded: a restarted charon holds nothing.
    const wanted = [sharedId('ike', name), ...this.#ppks.map((p) => sharedId('ppk', p.id))];
    if (conn && wanted.every((id) => held.has(id))) return false;
    this.#loaded.clear();
    await this.#loadBasics();
    if (this.#ppks.length > 0) await this.setPpks(this.#ppks);
    return true;
  }

  async establish(): Promise<string> {
    return initiate(this.#charon, this.#o.connection.name, [CHILD], this.#o.timeoutMs);
  }

  async terminate(ikeId: string): Promise<void> {
    await this.#charon.terminate(ikeId, this.#o.timeoutMs ?? 10_000);
  }

  sas(): Promise<SaState[]> {
    return this.#charon.sas(this.#o.connection.name);
  }

  async close(): Promise<void> {
    this.#charon.close();
  }
}

/**
 * Brings up a new IKE SA of connection `name` with its first child, then the other children in
 * it; resolves with the IKE SA's unique ID. A refusal of our authentication is `auth_failed`.
 */
export async function initiate(charon: Charon, name: string, children: readonly string[], timeoutMs = 10_000) {
  const log: Array<{ msg: string; ike?: string }> = [];
  const onLog = (m: ViciMessage) => {
    if (m['ikesa-name'] === name) log.push({ msg: String(m['msg']), ike: m['ikesa-uniqueid'] as string });
  };
  return charon.during('control-log', onLog, async () => {
    try {
      for (const child of children) await charon.call('initiate', { ike: name, child, timeout: timeoutMs });
    } catch (err) {
      if (log.some((l) => /AUTHENTICATION_FAILED|AUTH_FAILED/.test(l.msg))) {
        throw new IpsecError('auth_failed', `strongSwan: ${name}: the peer refused our authentication (AUTH_FAILED)`);
      }
      if (err instanceof IpsecError && err.code === 'daemon_unavailable') throw err;
      const last = log.at(-1)?.msg;
      throw new IpsecError(
        'establish_failed',
        `strongSwan: ${name}: ${(err as Error).message}${last ? ` (${last})` : ''}`,
      );
    }
    const id = log.find((l) => l.ike)?.ike;
    if (!id) throw new IpsecError('establish_failed', `strongSwan: ${name}: no IKE SA reported`);
    return id;
  });
}
