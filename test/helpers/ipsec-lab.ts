import { execFileSync, spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { startTshark } from './tshark.js';

/**
 * Two gateways in network namespaces of their own, joined by a veth pair (outer 10.99.0.1/.2),
 * each with an inner address on lo (10.99.1.1, 10.99.2.1) that the tunnel carries. Each runs a
 * real IKE daemon in a private mount namespace (its own /run). Needs root, as CI has.
 */
export interface Gateway {
  readonly name: 'a' | 'b';
  readonly ns: string;
  readonly dir: string;
  readonly outer: string;
  readonly inner: string;
  readonly id: string;
}

export type Daemon = 'strongswan' | 'libreswan';
/** One daemon kind for both gateways, or one each (e.g. strongSwan at A, Libreswan at B). */
export type Daemons = Daemon | { readonly a: Daemon; readonly b: Daemon };
/** Where scripts/install-test-deps.sh unpacks Libreswan (it conflicts with strongSwan's packages). */
export const LIBRESWAN_ROOT = process.env['QKS_LIBRESWAN_ROOT'] ?? '/opt/qks-test/libreswan';

export function peerMissing(daemon: Daemon): string | undefined {
  if (process.getuid?.() !== 0) return 'needs root (network namespaces)';
  const need = daemon === 'strongswan' ? ['/usr/lib/ipsec/charon'] : [join(LIBRESWAN_ROOT, 'usr/libexec/ipsec/pluto')];
  const missing = [...need, '/usr/bin/tshark', '/usr/bin/ping'].filter((f) => !existsSync(f));
  return missing.length ? `missing ${missing.join(', ')} (scripts/install-test-deps.sh installs them)` : undefined;
}

const sh = (args: string[]) => execFileSync(args[0]!, args.slice(1), { stdio: ['ignore', 'pipe', 'pipe'] });

export class IpsecLab {
  readonly root = mkdtempSync(join(tmpdir(), 'qks-ipsec-'));
  readonly tag = randomBytes(3).toString('hex');
  readonly a: Gateway;
  readonly b: Gateway;
  readonly #daemons = new Map<string, ChildProcess>();

  readonly daemons: { readonly a: Daemon; readonly b: Daemon };

  constructor(daemons: Daemons) {
    this.daemons = typeof daemons === 'string' ? { a: daemons, b: daemons } : daemons;
    const gw = (name: 'a' | 'b', n: number): Gateway => ({
      name,
      ns: `qks-${this.tag}-${name}`,
      dir: join(this.root, name),
      outer: `10.99.0.${n}`,
      inner: `10.99.${n}.1`,
      id: `${name}.qkd.test`,
    });
    this.a = gw('a', 1);
    this.b = gw('b', 2);
    for (const g of [this.a, this.b]) mkdirSync(g.dir, { recursive: true });
    // A run that dies before stop() leaves no daemons or namespaces behind.
    process.once('exit', () => {
      for (const child of this.#daemons.values()) child.kill('SIGKILL');
      for (const g of [this.a, this.b]) spawnSync('ip', ['netns', 'del', g.ns]);
    });
    writeFileSync(join(this.root, 'ike-secret'), `${randomBytes(24).toString('base64')}\n`, { mode: 0o600 });
  }

  get ikeSecretFile(): string {
    return join(this.root, 'ike-secret');
  }

  veth(g: Gateway): string {
    return `qv${this.tag}${g.name}`;
  }

  /** Creates the namespaces and the link between them. */
  network(): void {
    for (const g of [this.a, this.b]) sh(['ip', 'netns', 'add', g.ns]);
    sh(['ip', 'link', 'add', this.veth(this.a), 'type', 'veth', 'peer', 'name', this.veth(this.b)]);
    for (const g of [this.a, this.b]) {
      const dev = this.veth(g);
      sh(['ip', 'link', 'set', dev, 'netns', g.ns]);
      sh(['ip', '-n', g.ns, 'addr', 'add', `${g.outer}/24`, 'dev', dev]);
      sh(['ip', '-n', g.ns, 'link', 'set', dev, 'up']);
      sh(['ip', '-n', g.ns, 'link', 'set', 'lo', 'up']);
      sh(['ip', '-n', g.ns, 'addr', 'add', `${g.inner}/32`, 'dev', 'lo']);
    }
  }

  peer(g: Gateway): Gateway {
    return g === this.a ? this.b : this.a;
  }

  charonLog(g: Gateway): string {
    return join(g.dir, 'charon.log');
  }
  vici(g: Gateway): string {
    return `unix://${join(g.dir, 'charon.vici')}`;
  }
  plutoLog(g: Gateway): string {
    return join(g.dir, 'pluto.log');
  }
  ctlSocket(g: Gateway): string {
    return join(g.dir, 'run', 'pluto.ctl');
  }
  /** The secrets file the agent owns; Libreswan's main file includes it. */
  agentSecrets(g: Gateway): string {
    return join(g.dir, 'qks-ppks.secrets');
  }

  daemonOf(g: Gateway): Daemon {
    return this.daemons[g.name];
  }

  /** Starts the daemon of one gateway and waits until its control socket answers. */
  async startDaemon(g: Gateway): Promise<void> {
    const daemon = this.daemonOf(g);
    const script = daemon === 'strongswan' ? this.#charonScript(g) : this.#plutoScript(g);
    const child = spawn(
      'ip',
      ['netns', 'exec', g.ns, 'unshare', '-m', '--propagation', 'private', 'sh', '-c', script],
      {
        stdio: ['ignore', 'ignore', 'pipe'],
      },
    );
    let err = '';
    child.stderr!.on('data', (d: Buffer) => (err += d.toString()));
    this.#daemons.set(g.name, child);
    const socket = daemon === 'strongswan' ? join(g.dir, 'charon.vici') : this.ctlSocket(g);
    const deadline = Date.now() + 10_000;
    while (!existsSync(socket)) {
      if (child.exitCode !== null || Date.now() > deadline) {
        throw new Error(`${daemon} in ${g.ns} did not start: ${err.trim() || 'no output'}`);
      }
      await new Promise((r) => setTimeout(r, 50));
    }
  }

  #charonScript(g: Gateway): string {
    const conf = join(g.dir, 'strongswan.conf');
    writeFileSync(
      conf,
      [
        'charon {',
        '  load_modular = no',
        '  load = random nonce aes sha1 sha2 hmac pem pkcs1 pkcs8 pubkey x509 constraints kdf curve25519 gmp kernel-libipsec kernel-netlink socket-default vici updown',
        '  install_routes = yes',
        '  make_before_break = yes',
        '  filelog {',
        '    log {',
        `      path = ${this.charonLog(g)}`,
        '      ike = 2',
        '      cfg = 2',
        '      flush_line = yes',
        '    }',
        '  }',
        '  plugins {',
        '    vici {',
        `      socket = ${this.vici(g)}`,
        '    }',
        '  }',
        '}',
        '',
      ].join('\n'),
    );
    // charon's pid file is fixed at /run/charon.pid: each daemon gets a /run of its own.
    return `mount -t tmpfs tmpfs /run && STRONGSWAN_CONF=${conf} exec /usr/lib/ipsec/charon`;
  }

  #plutoScript(g: Gateway): string {
    const conf = join(g.dir, 'ipsec.conf');
    const nss = join(g.dir, 'nss');
    mkdirSync(nss, { recursive: true });
    mkdirSync(join(g.dir, 'run'), { recursive: true });
    writeFileSync(conf, `config setup\n    logfile=${this.plutoLog(g)}\n    plutodebug=base\n`);
    // The operator's secrets file; the agent owns the included one.
    writeFileSync(join(g.dir, 'ipsec.secrets'), `include ${this.agentSecrets(g)}\n`, { mode: 0o600 });
    writeFileSync(this.agentSecrets(g), '', { mode: 0o600 });
    sh(['certutil', '-N', '-d', `sql:${nss}`, '--empty-password']);
    const libexec = join(LIBRESWAN_ROOT, 'usr/libexec/ipsec');
    // pluto runs its helpers from /usr/libexec/ipsec: the unpacked package is bound there, in
    // this mount namespace only.
    return [
      'mkdir -p /usr/libexec/ipsec',
      `mount --bind ${libexec} /usr/libexec/ipsec`,
      'mount -t tmpfs tmpfs /run',
      `exec /usr/libexec/ipsec/pluto --config ${conf} --rundir ${join(g.dir, 'run')} --nssdir ${nss} --secretsfile ${join(g.dir, 'ipsec.secrets')} --ipsecdir ${g.dir} --nofork`,
    ].join(' && ');
  }

  get libexec(): string {
    return join(LIBRESWAN_ROOT, 'usr/libexec/ipsec');
  }

  async stopDaemon(g: Gateway): Promise<void> {
    const child = this.#daemons.get(g.name);
    this.#daemons.delete(g.name);
    if (!child || child.exitCode !== null) return;
    await new Promise((resolve) => {
      child.once('exit', resolve);
      // The daemon is the exec'd shell; a signal to it reaches charon/pluto.
      child.kill('SIGTERM');
    });
    for (const f of [join(g.dir, 'charon.vici'), this.ctlSocket(g)]) rmSync(f, { force: true });
  }

  /**
   * Pings the peer's inner address from this gateway's inner address, through the tunnel. With
   * `deadlineS`, ping waits for every reply until then instead of about two round trips after
   * the last request (a busy machine's late reply is not a lost one).
   */
  ping(from: Gateway, opts: PingOptions & { timeoutS?: number; deadlineS?: number }): ChildProcess {
    return spawn(
      'ip',
      [
        'netns',
        'exec',
        from.ns,
        'ping',
        '-n',
        '-c',
        String(opts.count),
        '-i',
        String(opts.intervalS ?? 0.2),
        '-W',
        String(opts.timeoutS ?? 1),
        '-s',
        String(opts.size ?? 56),
        ...(opts.deadlineS ? ['-w', String(opts.deadlineS)] : []),
        '-I',
        opts.src ?? from.inner,
        opts.dst ?? this.peer(from).inner,
      ],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    );
  }

  /**
   * Runs ping to completion: requests sent, requests that reached the peer (its kernel's count of
   * echo requests), and replies received. Every reply is waited for (up to 10 s past the last
   * request), so a packet counts as lost only if it really was; with a deadline, ping sends more
   * than `count` requests when replies were lost, until `count` replies came: compare with `sent`.
   */
  async pingResult(from: Gateway, opts: PingOptions): Promise<{ sent: number; arrived: number; received: number }> {
    const before = this.echoRequestsIn(this.peer(from));
    const deadlineS = Math.ceil(opts.count * (opts.intervalS ?? 0.2)) + 10;
    const p = this.ping(from, { ...opts, deadlineS });
    let out = '';
    p.stdout!.on('data', (d: Buffer) => (out += d.toString()));
    await new Promise((r) => p.once('exit', r));
    const arrived = this.echoRequestsIn(this.peer(from)) - before;
    const m = /(\d+) packets transmitted, (\d+) received/.exec(out);
    return { sent: Number(m?.[1] ?? 0), arrived, received: Number(m?.[2] ?? 0) };
  }

  /** ICMP echo requests the gateway's namespace has received so far (/proc/net/snmp, InEchos). */
  echoRequestsIn(g: Gateway): number {
    const snmp = execFileSync('ip', ['netns', 'exec', g.ns, 'cat', '/proc/net/snmp'], { encoding: 'utf8' });
    const [names, values] = snmp.split('\n').filter((l) => l.startsWith('Icmp:'));
    const at = names!.split(/\s+/).indexOf('InEchos');
    return Number(values!.split(/\s+/)[at]);
  }

  /** A capture of IKE on one gateway's outer interface. */
  async capture(g: Gateway): Promise<{ stop(): Promise<IkeEvidence[]> }> {
    const file = join(this.root, `ike-${g.name}-${Date.now()}.pcapng`);
    const filter = 'udp port 500 or udp port 4500';
    const tshark = await startTshark([
      'ip',
      'netns',
      'exec',
      g.ns,
      'tshark',
      '-i',
      this.veth(g),
      '-f',
      filter,
      '-w',
      file,
      '-q',
    ]);
    return {
      stop: async () => {
        await tshark.stop();
        return readIke(file);
      },
    };
  }

  /** Checks the peers, makes the network and starts both daemons. */
  async start(): Promise<void> {
    for (const daemon of new Set([this.daemons.a, this.daemons.b])) {
      const missing = peerMissing(daemon);
      if (missing) throw new Error(`${daemon} tests: ${missing}`);
    }
    this.network();
    await this.startDaemon(this.a);
    await this.startDaemon(this.b);
  }

  async stop(): Promise<void> {
    for (const g of [this.a, this.b]) await this.stopDaemon(g);
    for (const g of [this.a, this.b]) spawnSync('ip', ['netns', 'del', g.ns]);
    rmSync(this.root, { recursive: true, force: true });
  }

  log(g: Gateway): string {
    const file = this.daemonOf(g) === 'strongswan' ? this.charonLog(g) : this.plutoLog(g);
    return existsSync(file) ? readFileSync(file, 'utf8') : '';
  }
}

/** How many echo requests, how often and how large; from and to other inner addresses than the gateways' own. */
export interface PingOptions {
  readonly count: number;
  readonly intervalS?: number;
  readonly size?: number;
  readonly src?: string;
  readonly dst?: string;
}

/** One IKE message as tshark decoded it. */
export interface IkeEvidence {
  readonly exchange: number;
  readonly response: boolean;
  readonly notifies: number[];
}

function readIke(file: string): IkeEvidence[] {
  const out = spawnSync(
    'tshark',
    [
      '-r',
      file,
      '-Y',
      'isakmp',
      '-T',
      'fields',
      '-e',
      'isakmp.exchangetype',
      '-e',
      'isakmp.flag_r',
      '-e',
      'isakmp.notify.msgtype',
      '-E',
      'occurrence=a',
      '-E',
      'aggregator=,',
    ],
    { encoding: 'utf8' },
  );
  if (out.status !== 0) throw new Error(`tshark could not read the capture: ${out.stderr}`);
  return out.stdout
    .trim()
    .split('\n')
    .filter(Boolean)
    .map((line) => {
      const [exch, r, notes] = line.split('\t');
      return {
        exchange: Number(exch),
        response: r === '1' || r === 'True',
        notifies: (notes ?? '').split(',').filter(Boolean).map(Number),
      };
    });
}
