import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { freePorts } from '../../src/cli/ports.js';
import { eventually } from './two-kmes.js';

export const SSHD = '/usr/sbin/sshd';

export interface Sshd {
  readonly port: number;
  readonly child: ChildProcess;
  /** What sshd logged so far (LogLevel VERBOSE: one `Connection from` line per connection). */
  log(): string;
  /** `ssh` arguments that log in as root on host `peer` with the key made here, through `proxyCommand` or straight. */
  sshArgs(command: string, proxyCommand?: string): string[];
}

/**
 * A real OpenSSH server in the foreground on a free loopback port, with its host key and a client
 * key made in `dir` (real-peers-2.md, section 4). The caller kills `child`.
 */
export async function startSshd(dir: string): Promise<Sshd> {
  for (const name of ['host_ed25519', 'client_key']) {
    spawnSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', join(dir, name)], { stdio: 'ignore' });
  }
  writeFileSync(join(dir, 'authorized_keys'), readFileSync(join(dir, 'client_key.pub')));
  writeFileSync(join(dir, 'known_hosts'), `peer ${readFileSync(join(dir, 'host_ed25519.pub'), 'utf8')}`);
  const [port] = (await freePorts(1)) as [number];
  const config = [
    `Port ${port}`,
    'ListenAddress 127.0.0.1',
    `HostKey ${join(dir, 'host_ed25519')}`,
    `PidFile ${join(dir, 'sshd.pid')}`,
    `AuthorizedKeysFile ${join(dir, 'authorized_keys')}`,
    'PasswordAuthentication no',
    'KbdInteractiveAuthentication no',
    'UsePAM no',
    'StrictModes no',
    'LogLevel VERBOSE',
  ];
  writeFileSync(join(dir, 'sshd_config'), config.join('\n') + '\n');
  mkdirSync('/run/sshd', { recursive: true, mode: 0o755 });
  const child = spawn(SSHD, ['-D', '-e', '-f', join(dir, 'sshd_config')]);
  let log = '';
  child.stderr!.on('data', (d: Buffer) => (log += d.toString()));
  await eventually(() => log.includes('Server listening'), 10_000, 'sshd');
  return {
    port,
    child,
    log: () => log,
    sshArgs: (command, proxyCommand) => [
      '-F',
      '/dev/null',
      '-i',
      join(dir, 'client_key'),
      ...['-o', 'IdentitiesOnly=yes', '-o', 'IdentityAgent=none', '-o', 'BatchMode=yes'],
      ...['-o', `UserKnownHostsFile=${join(dir, 'known_hosts')}`, '-o', 'GlobalKnownHostsFile=/dev/null'],
      ...['-o', 'StrictHostKeyChecking=yes'],
      ...(proxyCommand ? ['-o', `ProxyCommand=${proxyCommand}`] : ['-o', 'HostKeyAlias=peer', '-p', String(port)]),
      proxyCommand ? 'root@peer' : 'root@127.0.0.1',
      command,
    ],
  };
}
