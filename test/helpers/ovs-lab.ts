import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';

/**
 * Open vSwitch with the user-space datapath in a network namespace (the switch's), and two hosts,
 * each in its own namespace, on the switch's ports (see /work/shared/notes/real-peers-2.md §5).
 * Everything the switch side runs (KMEs, tunnels, controller) runs in the switch's namespace too,
 * so `127.0.0.1` there is the switch's own loopback and nothing appears in the root namespace.
 */
export interface OvsLab {
  /** The switch's namespace. */
  readonly ns: string;
  /** Runs an OVS tool (or any command) inside the switch's namespace; throws on failure. */
  run(argv: readonly string[]): string;
  /** Spawns a long-running process inside the switch's namespace (`ip netns exec` execs it: same PID). */
  spawnIn(argv: readonly string[]): ChildProcess;
  vsctl(...args: string[]): string;
  /** The OpenFlow 1.3 flows on br0, as `ovs-ofctl dump-flows` prints them. */
  flows(): string[];
  /** Pings host b from host a: `count` echo requests, `intervalS` apart; how many came back. */
  ping(count: number, intervalS?: number): Promise<{ sent: number; received: number }>;
  /** Stops the daemons and deletes the namespaces; safe to call twice and after a failed start. */
  stop(): void;
}

const HOST_B = '10.71.0.2';

export function startOvsLab(dir: string): OvsLab {
  const tag = `qof${process.pid % 100000}`;
  const [sw, a, b] = [`${tag}sw`, `${tag}a`, `${tag}b`];
  const env = { ...process.env, OVS_RUNDIR: dir, OVS_LOGDIR: dir, OVS_DBDIR: dir };
  const sh = (argv: readonly string[]) => {
    const r = spawnSync(argv[0]!, argv.slice(1), { env, encoding: 'utf8', timeout: 20_000 });
    if (r.status !== 0) throw new Error(`${argv.join(' ')}: ${r.error?.message ?? r.stderr.trim()}`);
    return r.stdout;
  };
  const inNs = (ns: string, argv: readonly string[]) => sh(['ip', 'netns', 'exec', ns, ...argv]);
  const run = (argv: readonly string[]) => inNs(sw, argv);
  let stopped = false;
  const stop = () => {
    if (stopped) return;
    stopped = true;
    for (const ctl of ['ovs-vswitchd.ctl', 'ovsdb-server.ctl']) {
      const args = ctl === 'ovs-vswitchd.ctl' ? ['exit', '--cleanup'] : ['exit'];
      spawnSync('ip', ['netns', 'exec', sw, 'ovs-appctl', '-t', join(dir, ctl), ...args], { env, timeout: 10_000 });
    }
    // Should a daemon not have exited when asked, it goes by its PID (never by name).
    for (const pidfile of ['ovs-vswitchd.pid', 'ovsdb-server.pid']) {
      try {
        process.kill(Number(readFileSync(join(dir, pidfile), 'utf8').trim()), 'SIGKILL');
      } catch {
        // gone already (its pidfile removed or the process ended)
      }
    }
    for (const ns of [a, b, sw]) spawnSync('ip', ['netns', 'del', ns], { timeout: 10_000 });
  };
  try {
    for (const ns of [sw, a, b]) {
      spawnSync('ip', ['netns', 'del', ns]); // a leftover of an earlier, killed run
      sh(['ip', 'netns', 'add', ns]);
      inNs(ns, ['ip', 'link', 'set', 'lo', 'up']);
    }
    run(['ovsdb-tool', 'create', join(dir, 'conf.db'), '/usr/share/openvswitch/vswitch.ovsschema']);
    run(
      ['ovsdb-server', join(dir, 'conf.db'), `--remote=punix:${join(dir, 'db.sock')}`]
        .concat([`--pidfile=${join(dir, 'ovsdb-server.pid')}`, `--unixctl=${join(dir, 'ovsdb-server.ctl')}`])
        .concat([`--log-file=${join(dir, 'ovsdb-server.log')}`, '--detach', '--no-chdir']),
    );
    run(['ovs-vsctl', '--no-wait', 'init']);
    run(
      ['ovs-vswitchd', `unix:${join(dir, 'db.sock')}`, `--pidfile=${join(dir, 'ovs-vswitchd.pid')}`]
        .concat([`--unixctl=${join(dir, 'ovs-vswitchd.ctl')}`, `--log-file=${join(dir, 'ovs-vswitchd.log')}`])
        .concat(['--detach', '--no-chdir']),
    );
    run(['ovs-vsctl', 'add-br', 'br0', '--', 'set', 'bridge', 'br0', 'datapath_type=netdev', 'fail-mode=secure']);
    for (const [host, address] of [
      [a, '10.71.0.1'],
      [b, HOST_B],
    ] as const) {
      const port = `${host.slice(-1)}-sw`;
      sh(['ip', 'link', 'add', port, 'netns', sw, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', host]);
      inNs(host, ['ip', 'addr', 'add', `${address}/24`, 'dev', 'eth0']);
      inNs(host, ['ip', 'link', 'set', 'eth0', 'up']);
      // TCP carries nothing through the user-space datapath with TX checksum offload on.
      inNs(host, ['ethtool', '-K', 'eth0', 'tx', 'off']);
      run(['ip', 'link', 'set', port, 'up']);
      run(['ovs-vsctl', 'add-port', 'br0', port]);
    }
  } catch (e) {
    stop();
    throw e;
  }
  return {
    ns: sw,
    run,
    spawnIn: (argv) => spawn('ip', ['netns', 'exec', sw, ...argv], { env }),
    vsctl: (...args) => run(['ovs-vsctl', ...args]).trim(),
    flows: () =>
      run(['ovs-ofctl', '-O', 'OpenFlow13', 'dump-flows', 'br0'])
        .split('\n')
        .filter((l) => l.includes('priority=')),
    ping: (count, intervalS = 0.2) =>
      new Promise((resolve, reject) => {
        const argv = ['netns', 'exec', a, 'ping', '-n', '-c', String(count), '-i', String(intervalS), '-W', '1'];
        const p = spawn('ip', [...argv, HOST_B], { env });
        let out = '';
        p.stdout.on('data', (d: Buffer) => (out += d.toString()));
        p.once('error', reject);
        p.once('exit', () => {
          const m = /(\d+) packets transmitted, (\d+) received/.exec(out);
          if (!m) return reject(new Error(`ping printed no summary: ${out.slice(-200)}`));
          resolve({ sent: Number(m[1]), received: Number(m[2]) });
        });
      }),
    stop,
  };
}
