import { EventEmitter } from 'node:events';
import type { KeyRing } from '../../sae/key-ring.js';
import type { Rotation } from '../../sae/rotation.js';
import { IpsecError, type IpsecGateway } from './gateway.js';

export interface IpsecAgentOptions {
  /** initiator: drives the agreement and brings up IKE SAs; responder: installs what it is given. */
  readonly role: 'initiator' | 'responder';
  readonly gateway: IpsecGateway;
  /** The pair's keys, fed by the agreement (initiator: through `rotation`). */
  readonly keys: KeyRing;
  /** Initiator: told of the bytes the tunnel carries, for rotation by traffic. */
  readonly rotation?: Rotation;
  /** How often the SAs are read (traffic, state); default 1 s. */
  readonly pollMs?: number;
  /** Initiator: how often to try again when no SA has the current PPK, ms (default 5 s). */
  readonly retryMs?: number;
  /** How long old and new IKE SAs both stay up after a rotation, ms (default 500). */
  readonly overlapMs?: number;
  /** How long an IKE SA may keep failing while the peer installs the same PPK (default 3 s). */
  readonly peerInstallWaitMs?: number;
  /** How often the daemon is checked for what an operator's reload unloaded, ms (default 500). */
  readonly guardMs?: number;
}

export interface Established {
  readonly keyId: string;
  readonly ikeId: string;
  /** From the key's arrival to the new IKE SA being up, ms. */
  readonly ms: number;
  /** Older IKE SAs closed after this one came up (make-before-break). */
  readonly replaced: readonly string[];
}

export interface IpsecAgentEvents {
  /** A PPK is in the daemon (both roles). */
  installed: [{ keyId: string }];
  /** Initiator: an IKE SA with the current PPK is up. */
  established: [Established];
  /** Something failed; the SAs that were up stay up. */
  failure: [{ keyId?: string; code: string; message: string }];
  /** The daemon had lost the agent's connection or PPKs (`swanctl --load-all`): loaded again. */
  restored: [Record<string, never>];
}

/**
 * One gateway's agent: every key the SAE pair agrees becomes a PPK with the key ID as PPK_ID, and
 * (initiator) a new IKE SA keyed with it comes up before the older ones are closed, so traffic
 * does not stop. Rekeys would not bring the new PPK in; only a new IKE SA does.
 */
export class IpsecAgent extends EventEmitter<IpsecAgentEvents> {
  readonly #o: IpsecAgentOptions;
  #chain: Promise<void> = Promise.resolve();
  /** IKE SAs this agent brought up, oldest first, with the key each used. */
  readonly #mine: Array<{ ikeId: string; keyId: string }> = [];
  #bytesSeen = 0;
  #lastAttempt = 0;
  #poll: NodeJS.Timeout | undefined;
  #guard: NodeJS.Timeout | undefined;
  #stopped = false;
  readonly #onKey = (k: { keyId: string; agreedAt: number }) => this.#enqueue(() => this.#onNewKey(k));
  readonly #onRetired = () => this.#enqueue(() => this.#syncPpks());

  constructor(options: IpsecAgentOptions) {
    super();
    this.#o = options;
  }

  /** The IKE SA in use and its PPK_ID (initiator). */
  get current(): { ikeId: string; keyId: string } | undefined {
    return this.#mine.at(-1);
  }

  async start(): Promise<void> {
    await this.#o.gateway.open();
    // The daemon tells of SAs going down at once; the poll would find out within a second.
    await this.#o.gateway.watch?.((ikeId) => this.#enqueue(async () => this.#gone(ikeId)));
    if (this.#o.role === 'initiator') {
      // SAs of the connection from before (an earlier run of the agent) are replaced, once a
      // new one is up, like any older SA.
      for (const sa of await this.#o.gateway.sas()) this.#mine.push({ ikeId: sa.ikeId, keyId: '' });
    }
    this.#o.keys.on('key', this.#onKey);
    this.#o.keys.on('retired', this.#onRetired);
    const current = this.#o.keys.current();
    if (current) this.#onKey(current);
    if (this.#o.role === 'initiator') {
      this.#poll = setInterval(() => this.#enqueue(() => this.#pollTraffic()), this.#o.pollMs ?? 1000);
      this.#poll.unref();
    }
    if (this.#o.gateway.restoreIfUnloaded) {
      this.#guard = setInterval(() => this.#enqueue(() => this.#restore()), this.#o.guardMs ?? 500);
      this.#guard.unref();
    }
  }

  /** What an operator's reload removed is loaded again at once, and an initiator brings its SA back. */
  async #restore(): Promise<void> {
    if (this.#stopped) return;
    // A daemon that does not answer is reported by the traffic poll; the next look retries.
    const restored = await this.#o.gateway.restoreIfUnloaded!().catch(() => false);
    if (!restored) return;
    this.emit('restored', {});
    const key = this.#o.keys.current();
    if (this.#o.role === 'initiator' && key && !(await this.#up())) await this.#onNewKey(key);
  }

  /** Whether an SA of ours is still up in the daemon. */
  async #up(): Promise<boolean> {
    const sas = await this.#o.gateway.sas();
    return this.#mine.some((m) => sas.some((s) => s.ikeId === m.ikeId && s.state === 'ESTABLISHED'));
  }

  /** Resolves once everything asked of the daemon so far is done. */
  settled(): Promise<void> {
    return this.#chain;
  }

  #enqueue(step: () => Promise<void>): void {
    this.#chain = this.#chain.then(step).catch((err: unknown) => this.#fail(undefined, err));
  }

  #fail(keyId: string | undefined, err: unknown): void {
    const code = err instanceof IpsecError ? err.code : 'internal';
    this.emit('failure', { ...(keyId ? { keyId } : {}), code, message: (err as Error).message });
  }

  async #syncPpks(): Promise<void> {
    const current = this.#o.keys.current();
    // The ring's current key goes last: the gateways use the last one for new SAs.
    const held = this.#o.keys.all().filter((k) => k.keyId !== current?.keyId);
    const ppks = [...held, ...(current ? [current] : [])].map((k) => ({ id: k.keyId, key: k.key }));
    if (ppks.length > 0 && !this.#stopped) await this.#o.gateway.setPpks(ppks);
  }

  async #onNewKey(key: { keyId: string; agreedAt: number }): Promise<void> {
    if (this.#stopped || this.#o.keys.current()?.keyId !== key.keyId) return; // a newer key came
    this.#lastAttempt = Date.now();
    try {
      await this.#syncPpks();
      this.emit('installed', { keyId: key.keyId });
      if (this.#o.role === 'initiator') await this.#establish(key);
    } catch (err) {
      const restored = err instanceof IpsecError ? err.restoredIkeId : undefined;
      const last = this.#mine.at(-1);
      if (restored && last) this.#mine.splice(-1, 1, { ikeId: restored, keyId: last.keyId });
      this.#fail(key.keyId, err);
    }
  }

  async #establish(key: { keyId: string; agreedAt: number }): Promise<void> {
    const gw = this.#o.gateway;
    const deadline = Date.now() + (this.#o.peerInstallWaitMs ?? 3000);
    let ikeId: string;
    for (let attempt = 0; ; attempt++) {
      const wait = Math.min(500, 20 * 2 ** attempt);
      const lastTry = Date.now() + wait > deadline;
      try {
        ikeId = await gw.establish({ lastTry });
        break;
      } catch (err) {
        // The responder's agent installs the PPK when the agreement completes, a moment after
        // ours: a refusal right then is retried. Later, it means the peer holds another PPK.
        const retry = err instanceof IpsecError && (err.code === 'auth_failed' || err.code === 'establish_failed');
        if (!retry || lastTry) throw err;
        await new Promise((r) => setTimeout(r, wait));
      }
    }
    const older = this.#mine.splice(0);
    this.#mine.push({ ikeId, keyId: key.keyId });
    // Packets already on their way under the old SA still arrive before it goes.
    if (older.length > 0) await new Promise((r) => setTimeout(r, this.#o.overlapMs ?? 500));
    for (const old of older) if (old.ikeId !== ikeId) await gw.terminate(old.ikeId);
    this.#bytesSeen = 0;
    this.emit('established', {
      keyId: key.keyId,
      ikeId,
      ms: Date.now() - key.agreedAt,
      replaced: older.map((o) => o.ikeId).filter((id) => id !== ikeId),
    });
  }

  async #pollTraffic(): Promise<void> {
    if (this.#stopped) return;
    const sas = await this.#o.gateway.sas();
    for (const gone of this.#mine.filter((m) => !sas.some((s) => s.ikeId === m.ikeId))) this.#gone(gone.ikeId);
    const key = this.#o.keys.current();
    const current = this.current;
    if (!current) {
      // Nothing up (the daemon restarted, the peer went away): tried again now and then. While
      // an older SA is up, a refused new PPK waits for the next rotation instead.
      if (key && Date.now() - this.#lastAttempt >= (this.#o.retryMs ?? 5000)) await this.#onNewKey(key);
      return;
    }
    const sa = sas.find((s) => s.ikeId === current.ikeId)!;
    const delta = sa.bytes - this.#bytesSeen;
    this.#bytesSeen = sa.bytes;
    if (delta > 0) this.#o.rotation?.recordBytes(delta, current.keyId);
  }

  /** An SA of ours went down (not one we closed ourselves: those left #mine first). */
  #gone(ikeId: string): void {
    const i = this.#mine.findIndex((m) => m.ikeId === ikeId);
    if (i < 0) return;
    const [gone] = this.#mine.splice(i, 1);
    this.emit('failure', { keyId: gone!.keyId, code: 'sa_down', message: `IKE SA ${ikeId} is gone` });
  }

  async stop(): Promise<void> {
    this.#stopped = true;
    clearInterval(this.#poll);
    clearInterval(this.#guard);
    this.#o.keys.off('key', this.#onKey);
    this.#o.keys.off('retired', this.#onRetired);
    await this.#chain;
    await this.#o.gateway.close();
  }
}
