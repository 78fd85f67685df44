import { spawn, type ChildProcess } from 'node:child_process';
import { connect } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';

const accepts = (host: string, port: number) =>
  new Promise<boolean>((resolve) => {
    const s = connect(port, host);
    s.once('connect', () => (s.destroy(), resolve(true)));
    s.once('error', () => resolve(false));
  });

/** A real HAProxy (Debian's) in front of one site's replicas, with the configuration qks writes. */
export class Haproxy {
  readonly #child: ChildProcess;
  #log = '';

  private constructor(child: ChildProcess) {
    this.#child = child;
    child.stdout!.on('data', (d: Buffer) => (this.#log += d.toString()));
    child.stderr!.on('data', (d: Buffer) => (this.#log += d.toString()));
  }

  /** Starts HAProxy on a configuration file (qks writes one per site); resolves once every frontend accepts. */
  static async run(file: string, frontends: ReadonlyArray<{ host: string; port: number }>): Promise<Haproxy> {
    const proxy = new Haproxy(spawn('haproxy', ['-db', '-f', file], { stdio: ['ignore', 'pipe', 'pipe'] }));
    const deadline = Date.now() + 10_000;
    const listening = async () => (await Promise.all(frontends.map((f) => accepts(f.host, f.port)))).every(Boolean);
    while (!(await listening())) {
      if (proxy.#child.exitCode !== null || Date.now() > deadline) {
        throw new Error(`haproxy did not start: ${proxy.#log.slice(-2000)}`);
      }
      await sleep(50);
    }
    return proxy;
  }

  /** What HAProxy logged: one line per connection, naming the replica it went to. */
  get log(): string {
    return this.#log;
  }

  async stop(): Promise<void> {
    if (this.#child.exitCode !== null || this.#child.signalCode !== null) return;
    const exited = new Promise((resolve) => this.#child.once('exit', resolve));
    this.#child.kill('SIGKILL');
    await exited;
  }
}
