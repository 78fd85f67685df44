/**
 * The pieces of a pairs benchmark (bench/kme-pairs.ts explains one pair): SAE connection pools,
 * the pair itself, concurrent loops of pairs, and CPU time read from /proc.
 */
import { execFileSync } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { Pool } from 'undici';
import type { Deployment } from '../src/cli/init.js';
import type { KeyContainer } from '../src/domain/etsi-messages.js';

/** A keep-alive mutual-TLS pool holding one SAE's certificate, to its site's SAE API address. */
export function saePool(deployment: Deployment, sae: string, connections: number): Pool {
  const creds = deployment.saes.find((s) => s.id === sae)!;
  const { config } = deployment.configs.find((c) => c.kme === creds.kme)!;
  return new Pool(`https://127.0.0.1:${config.sae_api.port}`, {
    connections,
    connect: { ca: readFileSync(deployment.ca), cert: readFileSync(creds.cert), key: readFileSync(creds.key) },
  });
}

/** One request through undici's dispatcher interface: the client should cost as little as an SAE can. */
export const call = <T>(pool: Pool, path: string, body?: unknown): Promise<T> =>
  new Promise<T>((resolve, reject) => {
    const chunks: Buffer[] = [];
    let status = 0;
    const post = body !== undefined;
    pool.dispatch(
      {
        method: post ? 'POST' : 'GET',
        path,
        ...(post ? { body: JSON.stringify(body), headers: { 'content-type': 'application/json' } } : {}),
      },
      {
        onRequestStart: () => undefined,
        onResponseStart: (_c, statusCode) => void (status = statusCode),
        onResponseData: (_c, chunk) => void chunks.push(chunk),
        onResponseEnd: () => {
          const text = (chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks)).toString('utf8');
          // An error body names the problem, never key bytes; a 200 body is never printed.
          if (status !== 200) reject(new Error(`${path}: status ${status} ${text}`));
          else resolve(JSON.parse(text) as T);
        },
        onResponseError: (_c, err) => reject(err),
      },
    );
  });

interface Info {
  key_sources: Array<{ own_blocks: number; peer_blocks: number }>;
}
export const blocksAt = async (pool: Pool) => (await call<Info>(pool, '/api/v1/information/info')).key_sources[0]!;

/** One pair: sae-a1's enc_keys at kme-a for sae-b1, then sae-b1's dec_keys at kme-b for that key. */
async function pair(master: Pool, slave: Pool): Promise<void> {
  const enc = await call<KeyContainer>(master, '/api/v1/keys/sae-b1/enc_keys', { number: 1 });
  const key = enc.keys[0]!;
  const dec = await call<KeyContainer>(slave, '/api/v1/keys/sae-a1/dec_keys', { key_IDs: [{ key_ID: key.key_ID }] });
  // Both SAEs must hold the same key; compared here, never printed.
  if (dec.keys[0]?.key_ID !== key.key_ID || dec.keys[0].key !== key.key) throw new Error('the SAEs got different keys');
}

/**
 * `concurrency` loops of pairs back to back, sharing one budget of pairs and one deadline; returns
 * each pair's latency (ms).
 */
export async function drivePairs(
  master: Pool,
  slave: Pool,
  concurrency: number,
  budget: number,
  ms: number,
): Promise<number[]> {
  const latencies: number[] = [];
  const end = performance.now() + ms;
  let left = budget;
  const loop = async () => {
    while (left > 0 && performance.now() < end) {
      left--;
      const t = performance.now();
      await pair(master, slave);
      latencies.push(performance.now() - t);
    }
  };
  await Promise.all(Array.from({ length: concurrency }, loop));
  return latencies;
}

const CLOCK_TICKS = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;

/** Fields of /proc/PID/stat after the command name (field 3, the state, is index 0). */
const statFields = (pid: number) => readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');

/** utime + stime of a process, all its threads, in ms (fields 14 and 15 of /proc/PID/stat). */
export function cpuMs(pid: number): number {
  const f = statFields(pid);
  return ((Number(f[11]) + Number(f[12])) * 1000) / CLOCK_TICKS;
}

/** The live processes whose parent is `ppid` (this kernel has no /proc/PID/task/TID/children). */
export function childrenOf(ppid: number, comm?: string): number[] {
  const pids: number[] = [];
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    try {
      const text = readFileSync(`/proc/${name}/stat`, 'utf8');
      const f = text.split(') ')[1]!.split(' ');
      if (Number(f[1]) !== ppid) continue;
      if (comm !== undefined && text.slice(text.indexOf('(') + 1, text.lastIndexOf(')')) !== comm) continue;
      pids.push(Number(name));
    } catch {
      // Gone between the listing and the read.
    }
  }
  return pids;
}

/**
 * CPU of a PostgreSQL server in ms: the postmaster's own, that of its live children (backends,
 * WAL writer, checkpointer...), and that of children already gone and reaped, which the kernel adds
 * to the postmaster's cutime + cstime (fields 16 and 17). A backend that exits between two readings
 * moves from one sum to the other; the total stays whole.
 */
export function serverCpuMs(postmaster: number): number {
  const f = statFields(postmaster);
  const own = Number(f[11]) + Number(f[12]) + Number(f[13]) + Number(f[14]);
  let ms = (own * 1000) / CLOCK_TICKS;
  for (const pid of childrenOf(postmaster)) {
    try {
      ms += cpuMs(pid);
    } catch {
      // Exited just now: its time is in the postmaster's cutime at the next reading.
    }
  }
  return ms;
}

/** The client's own CPU (this process), in ms. */
export const clientCpuMs = () => {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1000;
};

export const median = (xs: readonly number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
