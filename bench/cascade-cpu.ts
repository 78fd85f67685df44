/**
 * Cascade's CPU per frame at each end, in one process: a realistic key pair (n bits, independent
 * errors at the given QBER), the corrector (Bob) and the responder (Alice) run to completion, the
 * keys checked. CPU time is process.cpuUsage() around each end's calls (V8's GC threads included).
 * With --against DIR (a built checkout, e.g. an older commit), both builds run the same frames,
 * alternating, and must disclose the same parities and end with the same keys.
 *
 *   npm run build && flock /tmp/qks-bench.lock node dist/bench/cascade-cpu.js \
 *     [--n 2100000] [--qber 0.01,0.033,0.05] [--frames 9] [--variant yanetal] [--against /tmp/old-qkd]
 */
import { fileURLToPath, pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import { hammingDistance } from '../src/qkd/bits.js';
import { planPasses, type CascadeVariant, type PassSpec } from '../src/qkd/cascade-plan.js';
import { Prng } from '../src/qkd/prng.js';
import { summarise, table } from './stats.js';

type CascadeModule = typeof import('../src/qkd/cascade.js');

const { values: opt } = parseArgs({
  options: {
    n: { type: 'string', default: '2100000' },
    qber: { type: 'string', default: '0.01,0.033,0.05' },
    frames: { type: 'string', default: '9' },
    variant: { type: 'string', default: 'yanetal' },
    against: { type: 'string' },
  },
});
const n = Number(opt.n);
const frames = Number(opt.frames);
const variant = opt.variant as CascadeVariant;

const load = async (root: string): Promise<CascadeModule> =>
  (await import(pathToFileURL(`${root}/dist/src/qkd/cascade.js`).href)) as CascadeModule;
const here = fileURLToPath(new URL('../..', import.meta.url));
const builds: Array<[string, CascadeModule]> = [['this build', await load(here)]];
if (opt.against) builds.push([opt.against, await load(opt.against)]);

const cpuMs = (f: () => void): number => {
  const t = process.cpuUsage();
  f();
  const d = process.cpuUsage(t);
  return (d.user + d.system) / 1000;
};

interface Result {
  bob: number;
  alice: number;
  disclosed: number;
  rounds: number;
  residual: number;
  key: Uint32Array;
}

function runFrame(m: CascadeModule, responderKey: Uint32Array, correctorKey: Uint32Array, passes: PassSpec[]): Result {
  const key = correctorKey.slice();
  const reference = responderKey.slice();
  let bob = 0;
  let alice = 0;
  let corrector!: InstanceType<CascadeModule['CascadeCorrector']>;
  let responder!: InstanceType<CascadeModule['CascadeResponder']>;
  let questions: Uint32Array | null = null;
  alice += cpuMs(() => {
    responder = new m.CascadeResponder(reference, n);
    responder.addPasses(passes);
  });
  bob += cpuMs(() => {
    corrector = new m.CascadeCorrector(key, n, passes);
    questions = corrector.firstQuestions();
  });
  while (questions) {
    let answers!: Uint8Array;
    const q: Uint32Array = questions;
    alice += cpuMs(() => (answers = responder.answer(q)));
    bob += cpuMs(() => (questions = corrector.onAnswers(answers)));
  }
  if (corrector.disclosed !== responder.disclosed) throw new Error('the ends count different disclosures');
  alice += cpuMs(() => responder.wipe());
  bob += cpuMs(() => corrector.wipe());
  const residual = hammingDistance(key, responderKey, n);
  return { bob, alice, disclosed: corrector.disclosed, rounds: corrector.rounds, residual, key };
}

const rng = new Prng([20261201, 7, n, 3]);
const rows: Array<Array<string | [string, string]>> = [];
for (const qber of opt.qber.split(',').map(Number)) {
  const per = builds.map(() => ({ bob: [] as number[], alice: [] as number[], disclosed: 0, rounds: 0, residual: 0 }));
  let errors = 0;
  for (let frame = -1; frame < frames; frame++) {
    const responderKey = rng.bits(n);
    const correctorKey = responderKey.slice();
    let e = 0;
    for (let i = 0; i < n; i++) {
      if (rng.float() < qber) {
        correctorKey[i >>> 5]! ^= 1 << (i & 31);
        e++;
      }
    }
    const passes = planPasses(variant, qber, n, rng);
    // Alternate which build goes first; frame -1 warms both up and is not counted.
    const order = builds.map((_, i) => i);
    if (frame & 1) order.reverse();
    const results: Result[] = [];
    for (const i of order) results[i] = runFrame(builds[i]![1], responderKey, correctorKey, passes);
    const first = results[0]!;
    for (const [i, r] of results.entries()) {
      if (r.disclosed !== first.disclosed || r.rounds !== first.rounds || hammingDistance(r.key, first.key, n) !== 0) {
        throw new Error(`${builds[i]![0]} and ${builds[0]![0]} disagree at QBER ${qber}`);
      }
      if (frame < 0) continue;
      const p = per[i]!;
      p.bob.push(r.bob);
      p.alice.push(r.alice);
      p.disclosed += r.disclosed;
      p.rounds += r.rounds;
      if (r.residual > 0) p.residual++;
    }
    if (frame >= 0) errors += e;
  }
  // This build's time over the other's, frame by frame (the two ran moments apart on the same
  // frame, so the load of the moment mostly cancels): the median ratio.
  const ratio = (side: 'bob' | 'alice', i: number) =>
    i === 0 ? '' : ` (× ${summarise(per[0]![side].map((t, f) => t / per[i]![side][f]!))[0]})`;
  for (const [i, p] of per.entries()) {
    rows.push([
      String(qber),
      builds[i]![0],
      summarise(p.bob)[0] + ratio('bob', i),
      summarise(p.alice)[0] + ratio('alice', i),
      (p.disclosed / frames / n).toFixed(4),
      (p.disclosed / frames / (errors / frames)).toFixed(3),
      (p.rounds / frames).toFixed(1),
      `${p.residual}/${frames}`,
    ]);
  }
}

console.log(
  `Cascade ${variant}, n = ${n}, ${frames} frames per QBER: medians of CPU ms per frame` +
    (opt.against ? "; (× r): median over frames of this build's time / that build's" : ''),
);
console.log(
  table(
    [
      'QBER',
      'build',
      'Bob (corrector) ms',
      'Alice (responder) ms',
      'disclosed / n',
      'disclosed / error',
      'rounds',
      'frames with residual errors',
    ],
    rows,
  ),
);
console.log(
  `\nnode dist/bench/cascade-cpu.js --n ${n} --qber ${opt.qber} --frames ${frames} --variant ${variant}` +
    (opt.against ? ` --against ${opt.against}` : ''),
);
