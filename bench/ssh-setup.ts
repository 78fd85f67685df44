/**
 * SSH session set-up through the QKD channel against direct (docs/control-planes.md): the wall
 * time of `ssh root@peer true` with real OpenSSH, straight to sshd, and through
 * `ProxyCommand=qks tunnel --role client --stdio` to a `qks tunnel --role server` in front of the
 * same sshd, keys agreed by the two KMEs of a `qks demo`. Through the tunnel the figure includes
 * starting Node.js for the ProxyCommand, agreeing a new key through both KMEs, and the TLS 1.3 PSK
 * handshake. Runs alternate; medians quoted.
 *
 *   npm run build && node dist/bench/ssh-setup.js [--runs 15]
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { freePorts } from '../src/cli/ports.js';
import { startSshd } from '../test/helpers/sshd.js';
import { eventually } from '../test/helpers/two-kmes.js';

const BIN = fileURLToPath(new URL('../../bin/qks.js', import.meta.url));
const { values: opt } = parseArgs({ options: { runs: { type: 'string', default: '15' } } });
const runs = Number(opt.runs);
const median = (xs: readonly number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

const dir = mkdtempSync(join(tmpdir(), 'qks-ssh-bench-'));
const manifest = join(dir, 'manifest.json');
const children: ChildProcess[] = [];
process.once('exit', () => children.forEach((c) => c.kill('SIGKILL')));
try {
  children.push(spawn(process.execPath, [BIN, 'demo', '--dir', join(dir, 'site'), '--manifest', manifest]));
  const sshd = await startSshd(dir);
  children.push(sshd.child);
  await eventually(() => existsSync(manifest), 60_000, 'the demo');
  const [agree, tls] = (await freePorts(2)) as [number, number];
  const server = spawn(process.execPath, [
    ...[BIN, 'tunnel', '--role', 'server', '--manifest', manifest, '--sae', 'sae-b1', '--peer', 'sae-a1'],
    ...['--agree', `127.0.0.1:${agree}`, '--listen', `127.0.0.1:${tls}`, '--target', `127.0.0.1:${sshd.port}`],
  ]);
  children.push(server);
  let listening = false;
  createInterface({ input: server.stdout! }).on('line', (l) => (listening ||= l.includes('"listening"')));
  await eventually(() => listening, 60_000, 'the tunnel server');
  const proxy = [process.execPath, BIN, 'tunnel', '--role', 'client', '--stdio', '--manifest', manifest]
    .concat(['--sae', 'sae-a1', '--peer', 'sae-b1', '--agree', `127.0.0.1:${agree}`, '--server', `127.0.0.1:${tls}`])
    .join(' ');
  const session = (through: boolean) =>
    new Promise<number>((resolve, reject) => {
      const t = performance.now();
      const ssh = spawn('ssh', sshd.sshArgs('true', through ? proxy : undefined), { stdio: 'ignore' });
      ssh.once('close', (code) => (code === 0 ? resolve(performance.now() - t) : reject(new Error(`ssh: ${code}`))));
    });
  await session(true); // warm the page cache for both paths
  await session(false);
  const direct: number[] = [];
  const tunnelled: number[] = [];
  for (let i = 0; i < runs; i++) {
    direct.push(await session(false));
    tunnelled.push(await session(true));
  }
  const [d, q] = [median(direct), median(tunnelled)];
  console.log('| path | `ssh root@peer true`, median ms | p10–p90 ms |\n| --- | --- | --- |');
  const spread = (xs: number[]) => {
    const s = [...xs].sort((a, b) => a - b);
    return `${s[Math.floor(0.1 * s.length)]!.toFixed(0)}–${s[Math.floor(0.9 * s.length)]!.toFixed(0)}`;
  };
  console.log(`| direct to sshd | ${d.toFixed(0)} | ${spread(direct)} |`);
  console.log(`| through qks tunnel (new QKD key each session) | ${q.toFixed(0)} | ${spread(tunnelled)} |`);
  console.log(`\nratio ${(q / d).toFixed(2)}; ${runs} sessions each, alternating.`);
  console.log(`Reproduce: npm run build && node dist/bench/ssh-setup.js --runs ${runs}`);
} finally {
  children.forEach((c) => c.kill('SIGKILL'));
  rmSync(dir, { recursive: true, force: true });
}
