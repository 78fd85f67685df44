/**
 * Path computation time of the controller's PCE (src/domain/pce.ts) on synthetic QKD networks of
 * 12, 50 and 200 nodes: a ring, each node also linked to three others chosen at random (seeded),
 * link material drawn at random. For random source-destination pairs: one path, one path of at
 * most 4 hops with a minimum key rate, and two disjoint paths. CPU time per computation, in this
 * process, medians and p99 over the pairs.
 *
 *   npm run build && node dist/bench/pce-paths.js [--pairs 300]
 */
import { parseArgs } from 'node:util';
import { computePaths, type PathRequest, type PceLink, type PceNetwork } from '../src/domain/pce.js';
import { summarise, table } from './stats.js';

const { values: opt } = parseArgs({ options: { pairs: { type: 'string', default: '300' } } });
const pairs = Number(opt.pairs);

/** mulberry32, so that every run measures the same networks and pairs. */
function seeded(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = Math.imul(s ^ (s >>> 15), s | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 2 ** 32;
  };
}

function network(size: number, random: () => number): PceNetwork {
  const id = (i: number) => `n${i}`;
  const seen = new Set<string>();
  const links: PceLink[] = [];
  const join = (i: number, j: number) => {
    const key = i < j ? `${i}-${j}` : `${j}-${i}`;
    if (i === j || seen.has(key)) return;
    seen.add(key);
    links.push({
      id: `l${key}`,
      a: id(i),
      b: id(j),
      up: random() > 0.02,
      rateBps: 1000 + random() * 50_000,
      availableBits: { [id(i)]: random() * 1e6, [id(j)]: random() * 1e6 },
    });
  };
  for (let i = 0; i < size; i++) {
    join(i, (i + 1) % size);
    for (let k = 0; k < 3; k++) join(i, Math.floor(random() * size));
  }
  return { nodes: Array.from({ length: size }, (_, i) => ({ id: id(i), trusted: random() > 0.05 })), links };
}

const rows: string[][] = [];
for (const size of [12, 50, 200]) {
  const random = seeded(size);
  const net = network(size, random);
  const kinds: Array<[string, (r: PathRequest) => PathRequest]> = [
    ['one path', (r) => r],
    ['≤ 4 hops, ≥ 10 kbit/s', (r) => ({ ...r, maxHops: 4, minRateBps: 10_000 })],
    ['two disjoint paths', (r) => ({ ...r, paths: 2 })],
  ];
  for (const [name, shape] of kinds) {
    const micros: number[] = [];
    let found = 0;
    for (let p = 0; p < pairs; p++) {
      const from = Math.floor(random() * size);
      const source = `n${from}`;
      const destination = `n${(from + 1 + Math.floor(random() * (size - 1))) % size}`;
      const req = shape({ source, destination, bits: 4096 });
      const start = process.cpuUsage();
      found += computePaths(net, req).length > 0 ? 1 : 0;
      const used = process.cpuUsage(start);
      micros.push((used.user + used.system) / 1000);
    }
    const [median, p99] = summarise(micros);
    rows.push([String(size), String(net.links.length), name, median, p99, `${Math.round((100 * found) / pairs)}%`]);
  }
}
console.log(`PCE path computation, ${pairs} random pairs per case, CPU ms per computation:\n`);
console.log(table(['nodes', 'links', 'request', 'median ms', 'p99 ms', 'pairs with a path'], rows));
console.log(`\nReproduce: npm run build && node dist/bench/pce-paths.js --pairs ${pairs}`);
