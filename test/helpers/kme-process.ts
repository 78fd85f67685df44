import { spawn, type ChildProcess } from 'node:child_process';
import { closeSync, openSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Deployment } from '../../src/cli/init.js';
import { portAnswers } from '../../src/cli/ports.js';

// From dist/test/helpers/ up to the package root.
const BIN = fileURLToPath(new URL('../../../bin/qks.js', import.meta.url));

/**
 * KMEs of a deployment as real `qks kme --config FILE` processes, to be killed with SIGKILL at
 * any moment. Output of every run goes to <dir>/<kme>.out. `killAll` must run in `after`.
 */
export class KmeProcesses {
  readonly #deployment: Deployment;
  readonly #running = new Map<string, ChildProcess>();

  constructor(deployment: Deployment) {
    this.#deployment = deployment;
    // Should the test process die before `after` runs, take the KMEs along.
    process.once('exit', () => {
      for (const child of this.#running.values()) child.kill('SIGKILL');
    });
  }

  #config(kme: string) {
    const c = this.#deployment.configs.find((x) => x.kme === kme);
    if (!c) throw new Error(`no KME ${kme}`);
    return c;
  }

  /** Starts the KME, with `env` added to this process's environment; does not wait for it to listen. */
  spawn(kme: string, env: NodeJS.ProcessEnv = {}): void {
    if (this.#running.has(kme)) throw new Error(`${kme} is running already`);
    const out = openSync(join(this.#deployment.dir, `${kme}.out`), 'a');
    const child = spawn(process.execPath, [BIN, 'kme', '--config', this.#config(kme).file], {
      stdio: ['ignore', out, out],
      env: { ...process.env, ...env },
    });
    closeSync(out);
    child.once('exit', () => {
      if (this.#running.get(kme) === child) this.#running.delete(kme);
    });
    this.#running.set(kme, child);
  }

  /** Waits until both of the KME's ports answer (the KME-to-KME port opens last). */
  async waitUp(kme: string, timeoutMs = 20_000): Promise<void> {
    const { config } = this.#config(kme);
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const child = this.#running.get(kme);
      if (!child) throw new Error(`${kme} exited while starting; see ${kme}.out`);
      if ((await portAnswers(config.sae_api.port)) && (await portAnswers(config.kme_api.port))) return;
      if (Date.now() > deadline) throw new Error(`${kme} did not start listening in ${timeoutMs} ms`);
      await new Promise((r) => setTimeout(r, 50));
    }
  }

  async start(kme: string, env: NodeJS.ProcessEnv = {}): Promise<void> {
    this.spawn(kme, env);
    await this.waitUp(kme);
  }

  /** SIGKILL, as a crash would; resolves once the process is gone and its ports are free. */
  async kill(kme: string): Promise<void> {
    const child = this.#running.get(kme);
    if (!child) return;
    const gone = new Promise((r) => child.once('exit', r));
    child.kill('SIGKILL');
    await gone;
  }

  /** Sends a signal (SIGSTOP freezes the KME as a hung host would; SIGCONT wakes it). */
  signal(kme: string, signal: NodeJS.Signals): void {
    this.#running.get(kme)?.kill(signal);
  }

  /** SIGTERM, as an operator's stop; resolves once the process has exited. */
  async terminate(kme: string): Promise<void> {
    const child = this.#running.get(kme);
    if (!child) return;
    const gone = new Promise((r) => child.once('exit', r));
    child.kill('SIGTERM');
    await gone;
  }

  /** The process ID of the running KME, if it runs. */
  pid(kme: string): number | undefined {
    return this.#running.get(kme)?.pid;
  }

  isRunning(kme: string): boolean {
    return this.#running.has(kme);
  }

  async killAll(): Promise<void> {
    await Promise.all([...this.#running.keys()].map((kme) => this.kill(kme)));
  }
}
