/**
 * SKIP key requests per second (docs/skip.md): one pair = router-a's `GET /key?remoteSystemID=sae-b1`
 * at kme-a (a new key, which kme-a reserves at kme-b before answering), then router-b's
 * `GET /key/{keyId}?remoteSystemID=sae-a1` at kme-b, both over TLS 1.2 DHE-PSK-AES256-CBC-SHA384
 * with keep-alive. Beside it, in the same run and through the same KMEs, the ETSI 014 pair
 * (enc_keys at kme-a, dec_keys at kme-b, mutual TLS): the cost of SKIP's protocol against ETSI's.
 * KMEs and load generator share this process and the machine's cores.
 *
 *   npm run build && node dist/bench/skip-keys.js [--levels 1,8] [--seconds 5] [--runs 3]
 */
import { Agent, request, type RequestOptions } from 'node:https';
import { parseArgs } from 'node:util';
import { Pool } from 'undici';
import type { KeyContainer } from '../src/domain/etsi-messages.js';
import { skipSites, type Router } from '../test/helpers/skip-sites.js';
import { call } from './pair-load.js';
import { readFileSync } from 'node:fs';

const { values: opt } = parseArgs({
  options: {
    levels: { type: 'string', default: '1,8' },
    seconds: { type: 'string', default: '5' },
    runs: { type: 'string', default: '3' },
  },
});
const levels = opt.levels.split(',').map(Number);
const seconds = Number(opt.seconds);
const runs = Number(opt.runs);
const median = (xs: readonly number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

const { sites, router } = await skipSites(
  { rateBps: 4_000_000, capacityBlocks: 200_000 },
  { 'router-a': 'sae-a1', 'router-b': 'sae-b1' },
);

/** A keep-alive SKIP client of one router: GET over TLS 1.2 PSK, JSON back. */
function skipClient(r: Router, connections: number) {
  const agent = new Agent({
    keepAlive: true,
    maxSockets: connections,
    minVersion: 'TLSv1.2',
    maxVersion: 'TLSv1.2',
    ciphers: 'DHE-PSK-AES256-CBC-SHA384',
    pskCallback: () => ({ psk: r.psk, identity: r.identity }),
    checkServerIdentity: () => undefined,
  } as ConstructorParameters<typeof Agent>[0]);
  const get = (path: string) =>
    new Promise<Record<string, string>>((resolve, reject) => {
      const req = request({ host: '127.0.0.1', port: r.port, path, agent } as RequestOptions, (res) => {
        let text = '';
        res.setEncoding('utf8');
        res.on('data', (d: string) => (text += d));
        res.on('end', () =>
          res.statusCode === 200
            ? resolve(JSON.parse(text) as Record<string, string>)
            : reject(new Error(`${path}: ${res.statusCode}`)),
        );
      });
      req.on('error', reject);
      req.end();
    });
  return { get, close: () => agent.destroy() };
}

const etsiPool = (sae: string, connections: number) => {
  const d = sites.deployment;
  const creds = d.saes.find((s) => s.id === sae)!;
  const { config } = d.configs.find((c) => c.kme === creds.kme)!;
  return new Pool(`https://127.0.0.1:${config.sae_api.port}`, {
    connections,
    connect: { ca: readFileSync(d.ca), cert: readFileSync(creds.cert), key: readFileSync(creds.key) },
  });
};

/** Pairs per second of `pair` at `concurrency` loops for `seconds`. */
async function rate(concurrency: number, pair: () => Promise<void>): Promise<number> {
  const end = Date.now() + seconds * 1000;
  let done = 0;
  const started = performance.now();
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (Date.now() < end) {
        await pair();
        done++;
      }
    }),
  );
  return done / ((performance.now() - started) / 1000);
}

// Material first: both sites' pools fill at 4 Mbit/s.
await new Promise((r) => setTimeout(r, 3000));
const rows: string[] = [];
for (const level of levels) {
  const a = skipClient(router('router-a'), level);
  const b = skipClient(router('router-b'), level);
  const master = etsiPool('sae-a1', level);
  const slave = etsiPool('sae-b1', level);
  const skipPair = async () => {
    const k = await a.get('/key?remoteSystemID=sae-b1');
    const same = await b.get(`/key/${k['keyId']}?remoteSystemID=sae-a1`);
    if (same['key'] !== k['key']) throw new Error('the routers got different keys');
  };
  const etsiPair = async () => {
    const enc = await call<KeyContainer>(master, '/api/v1/keys/sae-b1/enc_keys', { number: 1 });
    const key = enc.keys[0]!;
    const dec = await call<KeyContainer>(slave, '/api/v1/keys/sae-a1/dec_keys', { key_IDs: [{ key_ID: key.key_ID }] });
    if (dec.keys[0]?.key !== key.key) throw new Error('the SAEs got different keys');
  };
  const skip: number[] = [];
  const etsi: number[] = [];
  for (let run = 0; run < runs; run++) {
    // Alternating, so that the machine's other load falls on both alike.
    skip.push(await rate(level, skipPair));
    etsi.push(await rate(level, etsiPair));
    console.log(
      `concurrency ${level}, run ${run + 1}: SKIP ${skip.at(-1)!.toFixed(0)}/s, ETSI ${etsi.at(-1)!.toFixed(0)}/s`,
    );
  }
  const ratios = skip.map((s, i) => s / etsi[i]!);
  rows.push(`| ${level} | ${median(skip).toFixed(0)} | ${median(etsi).toFixed(0)} | ${median(ratios).toFixed(2)} |`);
  a.close();
  b.close();
  await Promise.all([master.close(), slave.close()]);
}
await sites.stop();
console.log('\n| concurrency | SKIP pairs/s | ETSI 014 pairs/s | SKIP / ETSI |\n| --- | --- | --- | --- |');
for (const r of rows) console.log(r);
console.log(
  `\nmedians of ${runs} runs of ${seconds} s, alternating. Reproduce: npm run build && node dist/bench/skip-keys.js --levels ${opt.levels} --seconds ${seconds} --runs ${runs}`,
);
