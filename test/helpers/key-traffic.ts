import type { HttpResult, TestClient } from './sae-client.js';
import type { Pair, WireKey } from './key-ledger.js';

/** Key sizes that are whole 8-byte pieces (see KeyLedger); several span more than one block. */
export const SIZES = [64, 128, 256, 512, 1024, 2048] as const;

/** Masters at both sites at once: cross-site both ways, local pairs, and local + remote slaves. */
export const BOTH_WAYS: readonly Pair[] = [
  { master: 'sae-a1', slave: 'sae-b1' },
  { master: 'sae-a2', slave: 'sae-b2', extra: ['sae-a1'] },
  { master: 'sae-a1', slave: 'sae-a2' },
  { master: 'sae-a2', slave: 'sae-b1' },
  { master: 'sae-b2', slave: 'sae-a2' },
  { master: 'sae-b1', slave: 'sae-a1' },
  { master: 'sae-b1', slave: 'sae-b2' },
  { master: 'sae-b2', slave: 'sae-a1', extra: ['sae-b1'] },
];

export const pick = <T>(items: readonly T[]): T => items[Math.floor(Math.random() * items.length)]!;

export const keysOf = (res: HttpResult): WireKey[] => (res.body as { keys: WireKey[] }).keys;

/** Asks for keys as the pair's master: GET when the request allows it and `useGet`, else POST. */
export function askKeys(client: TestClient, pair: Pair, number: number, size: number, useGet: boolean) {
  const path = `/api/v1/keys/${encodeURIComponent(pair.slave)}/enc_keys`;
  if (useGet && !pair.extra?.length) return client.get(`${path}?number=${number}&size=${size}`);
  return client.post(path, {
    number,
    size,
    ...(pair.extra?.length ? { additional_slave_SAE_IDs: pair.extra } : {}),
  });
}

/**
 * Fetches keys as a slave, all in one POST or one GET per key. Returns the keys, or the first
 * answer that was not 200.
 */
export async function fetchKeys(
  client: TestClient,
  master: string,
  keyIds: readonly string[],
  useGet: boolean,
): Promise<{ ok: true; keys: WireKey[] } | { ok: false; res: HttpResult }> {
  const path = `/api/v1/keys/${encodeURIComponent(master)}/dec_keys`;
  if (!useGet) {
    const res = await client.post(path, { key_IDs: keyIds.map((key_ID) => ({ key_ID })) });
    return res.status === 200 ? { ok: true, keys: keysOf(res) } : { ok: false, res };
  }
  const keys: WireKey[] = [];
  for (const id of keyIds) {
    const res = await client.get(`${path}?key_ID=${encodeURIComponent(id)}`);
    if (res.status !== 200) return { ok: false, res };
    keys.push(...keysOf(res));
  }
  return { ok: true, keys };
}

export interface LoadBounds {
  readonly workers: number;
  /** At most this many operations in all. */
  readonly maxOps: number;
  /** No operation starts after this many milliseconds. */
  readonly maxMs: number;
  /** Checked before each operation; true stops the load early. */
  readonly stop?: () => boolean;
}

/** Runs `op` from several workers at once, bounded by count and by time; returns how many ran. */
export async function runLoad(bounds: LoadBounds, op: (i: number) => Promise<void>): Promise<number> {
  const deadline = Date.now() + bounds.maxMs;
  let started = 0;
  const worker = async () => {
    while (started < bounds.maxOps && Date.now() < deadline && !bounds.stop?.()) await op(started++);
  };
  await Promise.all(Array.from({ length: bounds.workers }, worker));
  return started;
}
