import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { EventEmitter } from 'node:events';
import { mkdirSync, rmSync } from 'node:fs';
import type { Socket } from 'node:net';
import { join } from 'node:path';
import { writeFileAtomic } from '../../config/files.js';
import type { KeyRing } from '../../sae/key-ring.js';
import type { PskMode } from '../tls-psk/psk-tls.js';
import type { Endpoint } from '../tls-psk/psk-tunnel.js';

export interface StunnelOptions {
  readonly role: 'client' | 'server';
  /** Where this manager keeps stunnel's configuration, secrets file and log. */
  readonly dir: string;
  readonly accept: Endpoint;
  readonly connect: Endpoint;
  readonly keys: KeyRing;
  readonly mode: PskMode;
  /** The stunnel program (Debian: `stunnel4`). */
  readonly binary?: string;
  /** stunnel's `debug` level; `info` (default) logs the PSK identity of every connection. */
  readonly logLevel?: 'notice' | 'info' | 'debug';
  /** The first wait before a stunnel that died is started again; it doubles up to 30 s. */
  readonly restartDelayMs?: number;
}

export interface StunnelEvents {
  started: [{ pid: number }];
  exited: [{ code: number | null; signal: NodeJS.Signals | null }];
  restarting: [{ inMs: number }];
}

const MAX_RESTART_DELAY_MS = 30_000;
/** A stunnel that ran this long before it died starts again at once: it was not crash-looping. */
const STEADY_MS = 60_000;

/**
 * Drives a real stunnel the way operators deploy it: a configuration that is safe by default (no
 * session tickets, so resumption cannot skip the fresh key; TLS 1.3 only; psk_ke when asked), a
 * PSKsecrets file with the pair's agreed keys (identity = key ID), and SIGHUP on every new key.
 * It supervises stunnel: started again with back-off if it dies, and
 * never left behind, nor its secrets file, even if this process is killed with SIGKILL.
 */
export class StunnelManager extends EventEmitter<StunnelEvents> {
  readonly #o: StunnelOptions;
  #child: ChildProcess | undefined;
  #reaper: ChildProcess | undefined;
  #stopping = false;
  #restartTimer: NodeJS.Timeout | undefined;
  #delayMs: number;
  readonly #onKey = () => this.#rewriteAndReload();

  constructor(options: StunnelOptions) {
    super();
    this.#o = options;
    this.#delayMs = options.restartDelayMs ?? 1000;
  }

  get configFile(): string {
    return join(this.#o.dir, 'stunnel.conf');
  }
  get secretsFile(): string {
    return join(this.#o.dir, 'psk-secrets.txt');
  }
  get logFile(): string {
    return join(this.#o.dir, 'stunnel.log');
  }
  /** The running stunnel's process ID, if one runs. */
  get pid(): number | undefined {
    return this.#child?.exitCode === null ? this.#child.pid : undefined;
  }

  /** The stunnel configuration for the ring's current key. */
  config(): string {
    const { role, accept, connect, mode } = this.#o;
    const current = this.#o.keys.current();
    if (role === 'client' && !current) throw new Error('no agreed key yet');
    return [
      'foreground = yes',
      'pid =',
      `output = ${this.logFile}`,
      `debug = ${this.#o.logLevel ?? 'info'}`,
      // Small messages (key agreements, handshakes) should not wait for delayed ACKs.
      'socket = l:TCP_NODELAY=1',
      'socket = r:TCP_NODELAY=1',
      '[qks]',
      ...(role === 'client' ? ['client = yes', `PSKidentity = ${current!.keyId}`] : []),
      `accept = ${accept.host}:${accept.port}`,
      `connect = ${connect.host}:${connect.port}`,
      `PSKsecrets = ${this.secretsFile}`,
      'sslVersionMin = TLSv1.3',
      'ciphersuites = TLS_AES_128_GCM_SHA256:TLS_CHACHA20_POLY1305_SHA256',
      // Session tickets would let a client resume without the current QKD key.
      'options = NO_TICKET',
      // psk_ke: no (EC)DHE allowed and no group in common (see docs/tls-psk.md).
      ...(mode === 'psk_ke'
        ? ['options = ALLOW_NO_DHE_KEX', `curves = ${role === 'server' ? 'P-256' : 'X25519'}`]
        : []),
      '',
    ].join('\n');
  }

  /**
   * `identity:HEX` per key the ring holds; stunnel needs keys of at least 16 bytes. Before the first
   * key, a server's file holds a random key that nobody else has, under an identity no key ID can
   * take: stunnel refuses an empty file, and a server should listen (and refuse handshakes) from the
   * start, as the native tunnel does.
   */
  secrets(): string {
    const keys = this.#o.keys.all();
    if (keys.length === 0) return `qks-no-key-yet:${randomBytes(32).toString('hex')}\n`;
    return keys.map((k) => `${k.keyId}:${k.key.toString('hex')}\n`).join('');
  }

  #write(): void {
    mkdirSync(this.#o.dir, { recursive: true, mode: 0o700 });
    writeFileAtomic(this.secretsFile, this.secrets(), 0o600);
    writeFileAtomic(this.configFile, this.config(), 0o600);
  }

  #rewriteAndReload(): void {
    if (this.#stopping) return;
    this.#write();
    if (this.pid !== undefined) this.#child!.kill('SIGHUP');
  }

  /** Writes the files and starts stunnel; every new key is written and stunnel reloads it. */
  start(): void {
    this.#o.keys.on('key', this.#onKey);
    this.#o.keys.on('retired', this.#onKey);
    this.#spawn();
  }

  #spawn(): void {
    this.#restartTimer = undefined;
    this.#write();
    const child = spawn(this.#o.binary ?? 'stunnel4', [this.configFile], { stdio: 'ignore' });
    const startedAt = Date.now();
    this.#child = child;
    this.#watch(child);
    child.once('spawn', () => this.emit('started', { pid: child.pid! }));
    let gone = false;
    const onGone = (code: number | null, signal: NodeJS.Signals | null) => {
      if (gone) return;
      gone = true;
      this.#reaper?.kill('SIGKILL');
      this.#reaper = undefined;
      if (this.#stopping) return;
      this.emit('exited', { code, signal });
      if (Date.now() - startedAt > STEADY_MS) this.#delayMs = this.#o.restartDelayMs ?? 1000;
      const inMs = this.#delayMs;
      this.#delayMs = Math.min(MAX_RESTART_DELAY_MS, this.#delayMs * 2);
      this.emit('restarting', { inMs });
      this.#restartTimer = setTimeout(() => this.#spawn(), inMs);
    };
    // A program that cannot be started gives 'error' and no 'exit'.
    child.once('error', () => onGone(null, null));
    child.once('exit', onGone);
  }

  /**
   * A shell that outlives this process by design: it waits on a pipe from us, and when the pipe
   * closes (this process ended, even by SIGKILL) it stops stunnel and deletes the secrets file. It
   * ignores the signals a terminal or a service manager sends to the whole group.
   */
  #watch(child: ChildProcess): void {
    if (child.pid === undefined) return;
    const reaper = spawn(
      'sh',
      ['-c', 'trap "" INT TERM HUP; read _; kill -TERM "$1" 2>/dev/null; rm -f "$2"', 'qks-stunnel-reaper'].concat([
        String(child.pid),
        this.secretsFile,
      ]),
      { stdio: ['pipe', 'ignore', 'ignore'], detached: true },
    );
    reaper.unref();
    (reaper.stdin as Socket).unref();
    this.#reaper = reaper;
  }

  async stop(): Promise<void> {
    this.#stopping = true;
    this.#o.keys.off('key', this.#onKey);
    this.#o.keys.off('retired', this.#onKey);
    clearTimeout(this.#restartTimer);
    const child = this.#child;
    if (child && child.exitCode === null && child.signalCode === null) {
      await new Promise((resolve) => {
        child.once('exit', resolve);
        child.kill('SIGTERM');
      });
    }
    this.#reaper?.kill('SIGKILL');
    rmSync(this.secretsFile, { force: true });
  }
}
