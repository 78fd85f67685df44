import { setTimeout as sleep } from 'node:timers/promises';
import type { KeyLedger, Pair, WireKey } from './key-ledger.js';
import type { ReplicaLab } from './replica-lab.js';

export interface TrafficResult {
  /** 200 answers to masters. */
  readonly answered: number;
  /** Keys a master received that its slave could not fetch: each one a broken promise. */
  readonly unfetched: string[];
}

/**
 * Pairs asking for keys through the sites' HAProxies while `faults` runs: each master's keys are
 * fetched by its slave, asked again while replicas or the database are away (503, no answer),
 * and recorded in `ledger`. Failed requests of masters are fine; a key lost for a slave is not.
 */
export async function trafficDuring(
  lab: ReplicaLab,
  pairs: readonly Pair[],
  ledger: KeyLedger,
  faults: () => Promise<void>,
  slaveRetryMs = 30_000,
): Promise<TrafficResult> {
  const saes = [...new Set(pairs.flatMap((p) => [p.master, p.slave]))];
  const clients = new Map(saes.map((s) => [s, lab.client(s)]));
  let stop = false;
  let answered = 0;
  const unfetched: string[] = [];
  const traffic = pairs.map(async (pair) => {
    while (!stop) {
      const res = await clients
        .get(pair.master)!
        .get(`/api/v1/keys/${pair.slave}/enc_keys?number=2`)
        .catch(() => null);
      if (res?.status !== 200) {
        await sleep(50);
        continue;
      }
      answered++;
      const d = ledger.master(pair, (res.body as { keys: WireKey[] }).keys);
      const deadline = Date.now() + slaveRetryMs;
      for (;;) {
        const r = await clients
          .get(pair.slave)!
          .post(`/api/v1/keys/${pair.master}/dec_keys`, { key_IDs: d.keyIds.map((key_ID) => ({ key_ID })) })
          .catch(() => null);
        if (r?.status === 200) {
          ledger.slave(pair.slave, pair.master, (r.body as { keys: WireKey[] }).keys);
          break;
        }
        if ((r && r.status !== 503) || Date.now() > deadline) {
          unfetched.push(`${d.keyIds.join(',')}: ${r ? `${r.status} ${r.text}` : 'no answer'}`);
          break;
        }
        await sleep(100);
      }
    }
  });
  try {
    await faults();
  } finally {
    stop = true;
    await Promise.all(traffic);
  }
  return { answered, unfetched };
}
