import { execFile } from 'node:child_process';
import { mkdirSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { IpsecConnection, IpsecGateway, Ppk, SaState } from './gateway.js';
import { IpsecError } from './gateway.js';

export interface LibreswanOptions {
  /** pluto's control socket (`--ctlsocket`). */
  readonly ctlSocket: string;
  /**
   * The secrets file this agent owns; the operator's ipsec.secrets includes it
   * (`include FILE`). It holds the connection's PSK line and the PPKS lines.
   */
  readonly secretsFile: string;
  /** Where the agent writes the connection's configuration for addconn. */
  readonly dir: string;
  readonly connection: IpsecConnection;
  /** Folder of whack and addconn (Debian: /usr/libexec/ipsec). */
  readonly libexec?: string;
  readonly timeoutMs?: number;
}

const run = (file: string, args: string[], timeoutMs: number) =>
  new Promise<string>((resolve, reject) => {
    execFile(file, args, { timeout: timeoutMs, encoding: 'utf8' }, (err, stdout, stderr) => {
      const out = `${stdout}${stderr}`;
      if (err) reject(Object.assign(err, { output: out }));
      else resolve(out);
    });
  });

const atomicWrite = (path: string, text: string) => {
  writeFileSync(`${path}.tmp`, text, { mode: 0o600 });
  renameSync(`${path}.tmp`, path);
};
const id = (s: string) => (s.startsWith('@') ? s : `@${s}`);

/**
 * Libreswan's pluto, from outside: PPKS lines in a secrets file of our own (pluto picks the first
 * one for the two IDs when it initiates, and finds the peer's by PPK_ID when it responds), reread
 * with `whack --rereadsecrets`. pluto puts every new Child SA of the same peers into the IKE SA
 * it already has, and rekeys leave the PPK out, so a new PPK needs the old IKE SA replaced.
 */
export class LibreswanGateway implements IpsecGateway {
  readonly kind = 'libreswan' as const;
  readonly #o: LibreswanOptions;
  readonly #whack: string;
  readonly #addconn: string;
  readonly #timeout: number;
  #ppks: readonly Ppk[] = [];
  #closedAnSa = false;

  constructor(options: LibreswanOptions) {
    this.#o = options;
    const dir = options.libexec ?? '/usr/libexec/ipsec';
    this.#whack = join(dir, 'whack');
    this.#addconn = join(dir, 'addconn');
    this.#timeout = options.timeoutMs ?? 10_000;
  }

  get configFile(): string {
    return join(this.#o.dir, 'qks-ipsec.conf');
  }

  async #whackRun(args: string[]): Promise<string> {
    try {
      return await run(this.#whack, ['--ctlsocket', this.#o.ctlSocket, ...args], this.#timeout);
    } catch (err) {
      const e = err as NodeJS.ErrnoException & { output?: string };
      if (e.code === 'ENOENT') throw new IpsecError('daemon_unavailable', `Libreswan: ${this.#whack} not found`);
      const out = e.output ?? '';
      if (/connect|No such file|refused/i.test(out) && !out.includes('"')) {
        throw new IpsecError('daemon_unavailable', `Libreswan: pluto is not answering on ${this.#o.ctlSocket}`);
      }
      throw Object.assign(new IpsecError('daemon_error', `Libreswan: whack ${args.join(' ')}: ${lastLine(out)}`), {
        output: out,
      });
    }
  }

  #config(): string {
    const c = this.#o.connection;
    return [
      `conn ${c.name}`,
      '    ikev2=insist',
      '    authby=secret',
      // insist: no IKE SA without the PPK; permit would fall back to no PPK (a downgrade).
      `    ppk=${c.ppkRequired ? 'insist' : 'permit'}`,
      // The suites of the strongSwan gateway's defaults (aes256-sha256-x25519, aes256-sha256): the two agree.
      `    ike=${c.ikeProposal ?? 'aes256-sha2_256;dh31'}`,
      `    esp=${c.espProposal ?? 'aes256-sha2_256'}`,
      `    left=${c.localAddr}`,
      `    leftid=${id(c.localId)}`,
      `    leftsubnet=${c.localTs}`,
      `    right=${c.remoteAddr}`,
      `    rightid=${id(c.remoteId)}`,
      `    rightsubnet=${c.remoteTs}`,
      '    auto=add',
      '',
    ].join('\n');
  }

  async open(): Promise<void> {
    mkdirSync(this.#o.dir, { recursive: true, mode: 0o700 });
    atomicWrite(this.configFile, this.#config());
    this.#writeSecrets([]);
    await this.#whackRun(['--rereadsecrets']);
    try {
      await run(
        this.#addconn,
        ['--config', this.configFile, '--ctlsocket', this.#o.ctlSocket, this.#o.connection.name],
        this.#timeout,
      );
    } catch (err) {
      const out = (err as { output?: string }).output ?? (err as Error).message;
      throw new IpsecError('daemon_unavailable', `Libreswan: addconn ${this.#o.connection.name}: ${lastLine(out)}`);
    }
  }

  #writeSecrets(ppks: readonly Ppk[]): void {
    const c = this.#o.connection;
    const ids = `${id(c.localId)} ${id(c.remoteId)}`;
    // The current PPK first: pluto, as initiator, takes the first PPKS for the two IDs.
    const lines = [`${ids} : PSK ${JSON.stringify(c.ikeSecret)}`];
    for (const p of [...ppks].reverse()) lines.push(`${ids} : PPKS "${p.id}" 0x${p.key.toString('hex')}`);
    atomicWrite(this.#o.secretsFile, lines.join('\n') + '\n');
  }

  async setPpks(ppks: readonly Ppk[]): Promise<void> {
    if (ppks.length === 0) throw new TypeError('no PPK to use');
    this.#writeSecrets(ppks);
    await this.#whackRun(['--rereadsecrets']);
    this.#ppks = ppks;
  }

  /**
   * pluto will not make a second IKE SA of the same peers while one is up, so the old one goes
   * first (break-before-make, about 10 ms). If the new PPK is refused, the old SA is brought back
   * with the PPK before it, and the error says so.
   */
  async establish(opts: { lastTry?: boolean } = {}): Promise<string> {
    // Remembered across tries: the SA the first of them closed is the one to bring back.
    if ((await this.sas()).some((s) => s.state === 'ESTABLISHED')) this.#closedAnSa = true;
    await this.#whackRun(['--name', this.#o.connection.name, '--terminate']).catch(() => undefined);
    try {
      const id = await this.#initiate();
      this.#closedAnSa = false;
      return id;
    } catch (err) {
      const previous = this.#ppks.slice(0, -1);
      const restore = opts.lastTry !== false && this.#closedAnSa && previous.length > 0;
      if (opts.lastTry !== false) this.#closedAnSa = false;
      if (!restore || !(err instanceof IpsecError) || err.code === 'daemon_unavailable') {
        throw err;
      }
      await this.setPpks(previous);
      const restored = await this.#initiate().catch(() => undefined);
      throw new IpsecError(
        err.code,
        `${err.message}${restored ? `; the IKE SA is back with PPK ${previous.at(-1)!.id}` : '; the old IKE SA could not be restored'}`,
        restored,
      );
    }
  }

  async #initiate(): Promise<string> {
    const name = this.#o.connection.name;
    let out: string;
    try {
      out = await this.#whackRun(['--name', name, '--initiate']);
    } catch (err) {
      out = (err as { output?: string }).output ?? '';
      if (err instanceof IpsecError && err.code === 'daemon_unavailable') throw err;
    }
    const established = /#(\d+): initiator established IKE SA/.exec(out);
    if (established) return established[1]!;
    if (/AUTHENTICATION_FAILED|AUTH_FAILED/.test(out)) {
      throw new IpsecError(
        'auth_failed',
        `Libreswan: ${name}: the peer refused our authentication (AUTHENTICATION_FAILED)`,
      );
    }
    throw new IpsecError('establish_failed', `Libreswan: ${name}: ${lastLine(out)}`);
  }

  async terminate(ikeId: string): Promise<void> {
    await this.#whackRun(['--deletestate', ikeId]).catch(() => undefined);
  }

  async sas(): Promise<SaState[]> {
    const out = await this.#whackRun(['--showstates']);
    const name = this.#o.connection.name;
    const states: SaState[] = [];
    for (const m of out.matchAll(/#(\d+): "([^"]+)"[^ ]* (STATE_V2_[A-Z0-9_]+)/g)) {
      if (m[2] !== name || !/IKE_SA|PARENT/.test(m[3]!)) continue;
      states.push({
        ikeId: m[1]!,
        state: m[3]!.includes('ESTABLISHED') ? 'ESTABLISHED' : m[3]!,
        // pluto does not report it per SA; with ppk=insist no IKE SA exists without one.
        ppk: this.#o.connection.ppkRequired,
        bytes: 0,
        children: 0,
      });
    }
    return states;
  }

  async close(): Promise<void> {}
}

const lastLine = (out: string) =>
  out
    .trim()
    .split('\n')
    .filter((l) => l.trim())
    .at(-1) ?? 'no output';
