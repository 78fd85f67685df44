import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import type { IpsecAgentConfig } from '../../src/integrations/ipsec/agent-config.js';
import type { Gateway, IpsecLab } from './ipsec-lab.js';
import { eventually } from './two-kmes.js';

// From dist/test/helpers/ up to the package root.
const BIN = fileURLToPath(new URL('../../../bin/qks.js', import.meta.url));

export type AgentEvent = Record<string, unknown> & { event: string };

/** A `qks ipsec` process; its JSON lines are collected. */
export class AgentProcess {
  readonly events: AgentEvent[] = [];
  readonly child: ChildProcess;
  stderr = '';

  constructor(readonly config: string) {
    this.child = spawn(process.execPath, [BIN, 'ipsec', '--config', config], { stdio: ['ignore', 'pipe', 'pipe'] });
    process.once('exit', () => this.child.kill('SIGKILL'));
    createInterface({ input: this.child.stdout! }).on('line', (l) => this.events.push(JSON.parse(l) as AgentEvent));
    this.child.stderr!.on('data', (d: Buffer) => (this.stderr += d.toString()));
  }

  of(event: string): AgentEvent[] {
    return this.events.filter((e) => e.event === event);
  }

  async waitFor(event: string, count = 1, timeoutMs = 20_000): Promise<AgentEvent[]> {
    const deadline = Date.now() + timeoutMs;
    while (this.of(event).length < count) {
      if (this.child.exitCode !== null) throw new Error(`qks ipsec exited (${this.child.exitCode}): ${this.stderr}`);
      if (Date.now() > deadline) {
        const seen = this.events.slice(-6).map((e) => JSON.stringify(e));
        throw new Error(
          `timed out waiting for ${count} × ${event} from ${this.config}; last events:\n${seen.join('\n')}`,
        );
      }
      await new Promise((r) => setTimeout(r, 25));
    }
    return this.of(event);
  }

  async stop(signal: NodeJS.Signals = 'SIGTERM'): Promise<number | null> {
    if (this.child.exitCode !== null) return this.child.exitCode;
    return new Promise((resolve) => {
      this.child.once('exit', (code) => resolve(code));
      this.child.kill(signal);
    });
  }
}

/** The demo's two KMEs as a `qks demo` process, with its manifest. */
export async function startDemo(): Promise<{ manifest: string; stop(): Promise<void> }> {
  const dir = mkdtempSync(join(tmpdir(), 'qks-ipsec-demo-'));
  const manifest = join(dir, 'manifest.json');
  const demo = spawn(process.execPath, [BIN, 'demo', '--dir', join(dir, 'site'), '--manifest', manifest], {
    stdio: 'ignore',
  });
  process.once('exit', () => demo.kill('SIGKILL'));
  await eventually(() => existsSync(manifest), 30_000, 'the demo');
  return {
    manifest,
    stop: async () => {
      if (demo.exitCode === null) await new Promise((r) => (demo.once('exit', r), demo.kill('SIGTERM')));
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

export interface AgentSetup {
  readonly lab: IpsecLab;
  readonly gw: Gateway;
  readonly manifest: string;
  readonly agreePort: number;
  readonly everySeconds?: number;
  /** Rotation after this many bytes through the tunnel. */
  readonly bytes?: number;
  readonly ppk?: 'required' | 'optional';
}

/** Writes the agent's configuration for one gateway of the lab (a: initiator, b: responder). */
export function agentConfig(s: AgentSetup): string {
  const { lab, gw } = s;
  const peer = lab.peer(gw);
  const initiator = gw === lab.a;
  const daemon: IpsecAgentConfig['daemon'] =
    lab.daemonOf(gw) === 'strongswan'
      ? { type: 'strongswan', vici: lab.vici(gw) }
      : {
          type: 'libreswan',
          ctl_socket: lab.ctlSocket(gw),
          secrets_file: lab.agentSecrets(gw),
          dir: join(gw.dir, 'agent'),
          libexec: lab.libexec,
        };
  const config: IpsecAgentConfig = {
    sae: { id: initiator ? 'sae-a1' : 'sae-b1', manifest: s.manifest },
    peer: initiator ? 'sae-b1' : 'sae-a1',
    role: initiator ? 'initiator' : 'responder',
    agree: { host: '127.0.0.1', port: s.agreePort },
    rotation: { every_seconds: s.everySeconds ?? 3600, ...(s.bytes ? { bytes: s.bytes } : {}) },
    daemon,
    connection: {
      name: 'qkd',
      local_addr: gw.outer,
      remote_addr: peer.outer,
      local_id: gw.id,
      remote_id: peer.id,
      ike_secret_file: lab.ikeSecretFile,
      local_ts: `${gw.inner}/32`,
      remote_ts: `${peer.inner}/32`,
      ppk: s.ppk ?? 'required',
    },
  };
  const file = join(gw.dir, `agent-${s.agreePort}.json`);
  writeFileSync(file, JSON.stringify(config, null, 2));
  return file;
}
