import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { join } from 'node:path';
import type { PskMode } from '../../src/integrations/tls-psk/psk-tls.js';
import type { AgreedKey } from './kme-keys.js';

/** Builds test/peers/`name`.c (a small wolfSSL program) into `dir`; returns the binary's path. */
export function buildWolfsslPeer(name: 'wolfssl-psk-client' | 'wolfssl-psk-server', dir: string): string {
  const flags = spawnSync('pkg-config', ['--cflags', '--libs', 'wolfssl'], { encoding: 'utf8' });
  assert.equal(flags.status, 0, 'libwolfssl-dev is installed (scripts/install-test-deps.sh)');
  const binary = join(dir, name);
  const source = join(process.cwd(), 'test', 'peers', `${name}.c`);
  const build = spawnSync('gcc', ['-O2', '-Wall', '-o', binary, source, ...flags.stdout.trim().split(/\s+/)], {
    encoding: 'utf8',
  });
  assert.equal(build.status, 0, build.stderr);
  return binary;
}

/** A running wolfssl-psk-server: a separate process holding one PSK. */
export interface WolfsslServer {
  readonly port: number;
  /** What it has said on stderr so far, a line per connection (identities and reasons, no key bytes). */
  said(): string;
  stop(): Promise<void>;
}

/** Starts the wolfSSL server built from test/peers/wolfssl-psk-server.c on a free port, with `key` as its PSK. */
export async function startWolfsslServer(binary: string, key: AgreedKey, mode: PskMode): Promise<WolfsslServer> {
  const child = spawn(binary, ['0', key.keyId, mode], { stdio: ['pipe', 'pipe', 'pipe'] });
  // The key goes on stdin: not in argv, where a process listing or a spawn error would show it.
  child.stdin.end(key.key.toString('hex') + '\n');
  let said = '';
  child.stderr.on('data', (d: Buffer) => (said += d.toString()));
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const port = await new Promise<number>((resolve, reject) => {
    let out = '';
    child.stdout.on('data', (d: Buffer) => {
      out += d.toString();
      const listening = /^listening (\d+)$/m.exec(out);
      if (listening) resolve(Number(listening[1]));
    });
    child.once('exit', (code) => reject(new Error(`wolfssl-psk-server exited (${code}): ${said.trim()}`)));
  });
  return {
    port,
    said: () => said,
    stop: async () => {
      if (child.exitCode === null && child.signalCode === null) child.kill();
      await exited;
    },
  };
}
