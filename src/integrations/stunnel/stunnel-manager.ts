import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { EventEmitter } from 'node:events';
import { existsSync, mkdirSync, readFileSync, rmSync } from 'node:fs';
import { createServer, type Server, type Socket } from 'node:net';
import { join } from 'node:path';
import { writeFileAtomic } from '../../config/files.js';
import type { KeyRing } from '../../sae/key-ring.js';
import type { PskMode } from '../tls-psk/psk-tls.js';
import type { Endpoint } from '../tls-psk/psk-tunnel.js';

/** The identity of a secrets file with no agreed key in it: no key ID takes this form. */
const NO_KEY_YET = 'qks-no-key-yet';

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
  /** stunnel ended, or could not be started (`error`: why, e.g. its port is taken). */
  exited: [{ code: number | null; signal: NodeJS.Signals | null; error?: string }];
  restarting: [{ inMs: number }];
}

const MAX_RESTART_DELAY_MS = 30_000;
/** A stunnel that ran this long before it died waits only the first delay again: it was not crash-looping. */
const STEADY_MS = 60_000;
/** Linux shows each process's signal handlers in /proc. */
const HAS_PROC = existsSync('/proc/self/status');
/** How often a reload waits to see whether a starting stunnel can take SIGHUP yet. */
const HANGUP_POLL_MS = 10;

/**
 * Whether a process catches SIGHUP (Linux: the SigCgt mask in /proc). stunnel installs its handler
 * only once it has read its configuration and is listening; until then SIGHUP ends it.
 */
function catchesHangup(pid: number): boolean {
  if (!HAS_PROC) return true; // not Linux: no way to tell; signal it as soon as it runs
  try {
    const mask = /^SigCgt:\s*([0-9a-f]+)$/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1];
    return mask !== undefined && (BigInt(`0x${mask}`) & 1n) === 1n; // bit 0: signal 1, SIGHUP
  } catch {
    return false; // gone
  }
}

/** Starts the program in $0 with the socket on descriptor 3 as systemd's socket activation would. */
const HANDOVER = 'export LISTEN_PID=$$ LISTEN_FDS=1; exec "$0" "$@"';

/** A listening server's file descriptor (Node shows it only on its handle). */
function descriptorOf(server: Server): number {
  const fd = (server as unknown as { _handle?: { fd?: unknown } })._handle?.fd;
  if (typeof fd !== 'number' || fd < 0) throw new Error('no file descriptor for the listening socket');
  return fd;
}

/** A listening socket on `at`, for stunnel to take over. */
function listenOn(at: Endpoint): Promise<Server> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(at.port, at.host, () => resolve(server));
  });
}

/**
 * Drives a real stunnel the way operators deploy it: a configuration that is safe by default (no
 * session tickets, so resumption cannot skip the fresh key; TLS 1.3 only; psk_ke when asked), a
 * PSKsecrets file with the pair's agreed keys (identity = key ID), and SIGHUP on every new key.
 *
 * A reload must not cost connections. stunnel closes the listening socket it bound itself on every
 * SIGHUP and binds a new one: connections that arrive meanwhile are refused, and those waiting in
 * the old socket's queue are reset. A socket it was handed (systemd's socket activation,
 * `LISTEN_FDS`) it keeps across reloads, so the manager binds the accept address itself and hands
 * the socket over that way. And SIGHUP ends a stunnel that is still starting (it installs its
 * handler last), so a key that arrives then is loaded once stunnel can take the signal.
 *
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
  /** A reload waiting for a starting stunnel to install its SIGHUP handler. */
  #hangupTimer: NodeJS.Timeout | undefined;
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
    const child = this.#child;
    return child && child.exitCode === null && child.signalCode === null ? child.pid : undefined;
  }

  /** The stunnel configuration for the ring's current key. */
  config(): string {
    const { role, accept, connect, mode } = this.#o;
    // A client without a current key (none yet, or the last expired with no successor) names one
    // nobody has: its connections fail at the handshake rather than use a retired key.
    const identity = this.#o.keys.current()?.keyId ?? NO_KEY_YET;
    return [
      'foreground = yes',
      'pid =',
      `output = ${this.logFile}`,
      `debug = ${this.#o.logLevel ?? 'info'}`,
      // Small messages (key agreements, handshakes) should not wait for delayed ACKs.
      'socket = l:TCP_NODELAY=1',
      'socket = r:TCP_NODELAY=1',
      '[qks]',
      ...(role === 'client' ? ['client = yes', `PSKidentity = ${identity}`] : []),
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
    // stunnel refuses a client whose identity has no key in the file: the placeholder is there too.
    const placeholder = keys.length === 0 || (this.#o.role === 'client' && !this.#o.keys.current());
    const lines = keys.map((k) => `${k.keyId}:${k.key.toString('hex')}\n`);
    return [...(placeholder ? [`${NO_KEY_YET}:${randomBytes(32).toString('hex')}\n`] : []), ...lines].join('');
  }

  #write(): void {
    mkdirSync(this.#o.dir, { recursive: true, mode: 0o700 });
    writeFileAtomic(this.secretsFile, this.secrets(), 0o600);
    writeFileAtomic(this.configFile, this.config(), 0o600);
  }

  #rewriteAndReload(): void {
    if (this.#stopping) return;
    this.#write();
    this.#reload();
  }

  /** SIGHUP, once the running stunnel can take it (a starting one would die of it). */
  #reload(): void {
    if (this.#hangupTimer) return; // one reload is already waiting; it reads the newest files
    const pid = this.pid;
    if (pid === undefined) return; // a stunnel started later reads the files as they are then
    if (catchesHangup(pid)) return void this.#child!.kill('SIGHUP');
    this.#hangupTimer = setTimeout(() => {
      this.#hangupTimer = undefined;
      if (this.pid === pid) this.#reload();
    }, HANGUP_POLL_MS);
  }

  /**
   * Writes the files and starts stunnel (resolved once it is started, or failed to start and is
   * being retried); every new key is written and stunnel reloads it.
   */
  start(): Promise<void> {
    this.#o.keys.on('key', this.#onKey);
    this.#o.keys.on('retired', this.#onKey);
    return this.#spawn();
  }

  async #spawn(): Promise<void> {
    this.#restartTimer = undefined;
    const startedAt = Date.now();
    let gone = false;
    const onGone = (code: number | null, signal: NodeJS.Signals | null, error?: string) => {
      if (gone) return;
      gone = true;
      clearTimeout(this.#hangupTimer);
      this.#hangupTimer = undefined;
      this.#reaper?.kill('SIGKILL');
      this.#reaper = undefined;
      if (this.#stopping) return;
      this.emit('exited', { code, signal, ...(error === undefined ? {} : { error }) });
      if (Date.now() - startedAt > STEADY_MS) this.#delayMs = this.#o.restartDelayMs ?? 1000;
      const inMs = this.#delayMs;
      this.#delayMs = Math.min(MAX_RESTART_DELAY_MS, this.#delayMs * 2);
      this.emit('restarting', { inMs });
      this.#restartTimer = setTimeout(() => void this.#spawn(), inMs);
    };
    let child: ChildProcess;
    try {
      this.#write();
      const listening = await listenOn(this.#o.accept);
      if (this.#stopping) return void listening.close();
      // Handed over as systemd does: the socket as descriptor 3, LISTEN_FDS=1, LISTEN_PID =
      // stunnel's own (the shell's, which exec keeps). This runs in the tick the socket started
      // listening and closes this process's copy in it, so this process never accepts on it.
      try {
        child = spawn('sh', ['-c', HANDOVER, this.#o.binary ?? 'stunnel4', this.configFile], {
          stdio: ['ignore', 'ignore', 'ignore', descriptorOf(listening)],
        });
      } finally {
        listening.close();
      }
    } catch (err) {
      return onGone(null, null, (err as Error).message);
    }
    this.#child = child;
    this.#watch(child);
    // A program that cannot be started gives 'error' and no 'exit'.
    child.once('error', (err) => onGone(null, null, err.message));
    child.once('exit', onGone);
    await new Promise<void>((resolve) => {
      child.once('spawn', () => {
        this.emit('started', { pid: child.pid! });
        resolve();
      });
      child.once('error', () => resolve());
    });
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
    clearTimeout(this.#hangupTimer);
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
