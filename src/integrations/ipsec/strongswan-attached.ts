import { Charon } from './charon.js';
import type { IpsecGateway, Ppk, SaState } from './gateway.js';
import { IpsecError } from './gateway.js';
import { initiate } from './strongswan.js';
import type { ViciMessage } from './vici/message.js';

export interface AttachedOptions {
  /** charon's VICI socket, `unix:///path/charon.vici`. */
  readonly vici: string;
  /** The connection's name in the operator's swanctl.conf. */
  readonly name: string;
  /** How long an initiate or a reauthentication may take (default 10 s). */
  readonly timeoutMs?: number;
}

/** The ID of the agent's PPK secret in charon (`swanctl --list-creds` does not show VICI's). */
const sharedId = (name: string) => `qks-attached-ppk-${name}`;

/**
 * A connection the operator defines in swanctl.conf (authentication, certificates, children,
 * proposals: all theirs), to which the agent only supplies the PPK and its rotation. The operator's
 * file fixes the connection's `ppk_id`, and `swanctl --load-all` loads it again as written; so the
 * PPK_ID stays the same and each new QKD key replaces the value behind it (on both gateways), and
 * the initiator reauthenticates the IKE SA (make-before-break) to bring the new value in: rekeys
 * do not use the PPK.
 */
export class StrongSwanAttachedGateway implements IpsecGateway {
  readonly kind = 'strongswan' as const;
  readonly #o: AttachedOptions;
  readonly #charon: Charon;
  #ppkId = '';
  #children: string[] = [];
  #current: Ppk | undefined;
  #opened = false;

  constructor(options: AttachedOptions) {
    this.#o = options;
    // A restarted charon holds no PPK (its files are loaded by swanctl, not by charon itself).
    this.#charon = new Charon(options.vici, async () => {
      if (this.#current) await this.#loadPpk(this.#current);
    });
  }

  /** Reads the operator's connection: its PPK_ID and children. */
  async open(): Promise<void> {
    await this.#readConnection();
    this.#opened = true;
    this.#charon.ready();
  }

  async #readConnection(): Promise<void> {
    const name = this.#o.name;
    const conn = await this.#charon.connection(name);
    if (!conn) {
      throw new IpsecError(
        'daemon_error',
        `strongSwan: no connection "${name}" is loaded: define it in swanctl.conf and run swanctl --load-all`,
      );
    }
    const ppkId = typeof conn['ppk_id'] === 'string' ? conn['ppk_id'] : '';
    if (!ppkId) {
      throw new IpsecError(
        'daemon_error',
        `strongSwan: connection "${name}" has no ppk_id: add ppk_id (the same on both gateways) and ppk_required = yes to it in swanctl.conf`,
      );
    }
    const children = Object.keys((conn['children'] as ViciMessage | undefined) ?? {});
    if (children.length === 0) throw new IpsecError('daemon_error', `strongSwan: connection "${name}" has no children`);
    this.#ppkId = ppkId;
    this.#children = children;
  }

  async watch(onDown: (ikeId: string) => void): Promise<void> {
    await this.#charon.watchDown(this.#o.name, onDown);
  }

  /** Only the current key: the PPK_ID names one value at a time. */
  async setPpks(ppks: readonly Ppk[]): Promise<void> {
    const current = ppks.at(-1);
    if (!current) throw new TypeError('no PPK to use');
    await this.#loadPpk(current);
    this.#current = current;
  }

  async #loadPpk(ppk: Ppk): Promise<void> {
    // Loading under the same ID replaces the value charon held.
    await this.#charon.call('load-shared', {
      id: sharedId(this.#o.name),
      type: 'ppk',
      data: ppk.key,
      owners: [this.#ppkId],
    });
  }

  /**
   * A new IKE SA with the current PPK: a first one is initiated with every child; after that, the
   * newest SA is reauthenticated (initiating again would reuse it).
   */
  async establish(): Promise<string> {
    const name = this.#o.name;
    const before = (await this.sas()).filter((s) => s.state === 'ESTABLISHED');
    const newest = before.at(-1);
    if (!newest) return initiate(this.#charon, name, this.#children, this.#o.timeoutMs);
    const refusals: string[] = [];
    const onLog = (m: ViciMessage) => {
      const msg = String(m['msg']);
      if (m['ikesa-name'] === name && /AUTHENTICATION_FAILED|AUTH_FAILED/.test(msg)) refusals.push(msg);
    };
    return this.#charon.during('log', onLog, async () => {
      await this.#charon.call('rekey', { 'ike-id': newest.ikeId, reauth: 'yes' });
      const deadline = Date.now() + (this.#o.timeoutMs ?? 10_000);
      for (;;) {
        if (refusals.length > 0) {
          throw new IpsecError('auth_failed', `strongSwan: ${name}: the peer refused our authentication (AUTH_FAILED)`);
        }
        const up = (await this.sas()).find(
          (s) =>
            s.state === 'ESTABLISHED' &&
            !before.some((b) => b.ikeId === s.ikeId) &&
            s.children >= Math.min(newest.children, this.#children.length),
        );
        if (up) return up.ikeId;
        if (Date.now() > deadline) {
          throw new IpsecError('establish_failed', `strongSwan: ${name}: the reauthentication did not complete`);
        }
        await new Promise((r) => setTimeout(r, 50));
      }
    });
  }

  /**
   * After `swanctl --load-all` (which unloads secrets its files do not name) or a charon restart:
   * the PPK is loaded again, and the connection read again in case the operator changed it.
   */
  async restoreIfUnloaded(): Promise<boolean> {
    if (!this.#opened || !this.#current) return false;
    const ppkId = this.#ppkId;
    await this.#readConnection();
    if (ppkId === this.#ppkId && (await this.#charon.sharedIds()).has(sharedId(this.#o.name))) return false;
    await this.#loadPpk(this.#current);
    return true;
  }

  async terminate(ikeId: string): Promise<void> {
    await this.#charon.terminate(ikeId, this.#o.timeoutMs ?? 10_000);
  }

  sas(): Promise<SaState[]> {
    return this.#charon.sas(this.#o.name);
  }

  async close(): Promise<void> {
    this.#charon.close();
  }
}
