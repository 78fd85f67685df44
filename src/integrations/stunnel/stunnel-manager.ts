import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
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
}

const atomicWrite = (path: string, text: string) => {
  writeFileSync(`${path}.tmp`, text, { mode: 0o600 });
  renameSync(`${path}.tmp`, path);
};

/**
 * Drives a real stunnel the way operators deploy it: a configuration that is safe by default (no
 * session tickets, so resumption cannot skip the fresh key; TLS 1.3 only; psk_ke when asked), a
 * PSKsecrets file with the pair's agreed keys (identity = key ID), and SIGHUP on every new key.
 */
export class StunnelManager {
  readonly #o: StunnelOptions;
  #child: ChildProcess | undefined;
  readonly #onKey = () => this.#rewriteAndReload();

  constructor(options: StunnelOptions) {
    this.#o = options;
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

  /** `identity:HEX` per key the ring holds; stunnel needs keys of at least 16 bytes. */
  secrets(): string {
    return this.#o.keys
      .all()
      .map((k) => `${k.keyId}:${k.key.toString('hex')}\n`)
      .join('');
  }

  #write(): void {
    mkdirSync(this.#o.dir, { recursive: true, mode: 0o700 });
    atomicWrite(this.secretsFile, this.secrets());
    atomicWrite(this.configFile, this.config());
  }

  #rewriteAndReload(): void {
    this.#write();
    this.#child?.kill('SIGHUP');
  }

  /** Writes the files and starts stunnel; every new key is written and stunnel reloads it. */
  start(): ChildProcess {
    this.#write();
    const child = spawn(this.#o.binary ?? 'stunnel4', [this.configFile], { stdio: 'ignore' });
    this.#child = child;
    this.#o.keys.on('key', this.#onKey);
    this.#o.keys.on('retired', this.#onKey);
    return child;
  }

  async stop(): Promise<void> {
    this.#o.keys.off('key', this.#onKey);
    this.#o.keys.off('retired', this.#onKey);
    const child = this.#child;
    if (!child || child.exitCode !== null) return;
    await new Promise((resolve) => {
      child.once('exit', resolve);
      child.kill('SIGTERM');
    });
  }
}
