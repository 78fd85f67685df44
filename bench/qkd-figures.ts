/**
 * The QKD link's comparisons with published results, as data (CSV) and figures (SVG) in
 * docs/figures/: the decoy-state key rate versus distance with the GYS parameters (Ma et al.
 * 2005), the link's expected rate with its detectors' dead time and afterpulsing, the simulated
 * link's measured rate at a few distances (per pulse sent), and Cascade's efficiency and
 * channel uses versus QBER (Martinez-Mateo et al. 2015).
 *
 *   npm run build && node dist/bench/qkd-figures.js [--runs 40]
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { flipBit, hammingDistance } from '../src/qkd/bits.js';
import { CascadeCorrector, CascadeResponder } from '../src/qkd/cascade.js';
import { planPasses, type CascadeVariant } from '../src/qkd/cascade-plan.js';
import * as decoy from '../src/qkd/decoy.js';
import { Prng } from '../src/qkd/prng.js';
import { expectedSecretPerPulse } from '../src/physics/detector.js';
import type { LinkPhysics } from '../src/physics/link-model.js';
import { DEFAULT_QKD } from '../src/sources/qkd/settings.js';
import { qkdPair, qkdSettings } from '../test/helpers/qkd-pair.js';
import { markdownTable, SIMULATED_HEADER, simulatedRateRows } from './figure-tables.js';
import { svgChart } from './svg-plot.js';

const { values: opt } = parseArgs({ options: { runs: { type: 'string', default: '40' } } });
const DIR = fileURLToPath(new URL('../../docs/figures/', import.meta.url));
mkdirSync(DIR, { recursive: true });
const csv = (file: string, header: string[], rows: Array<Array<number | string>>) =>
  writeFileSync(DIR + file, [header, ...rows].map((r) => r.join(',')).join('\n') + '\n');

// 1. Key rate versus distance, GYS parameters, f = 1.22, q = 1/2.
const at = (km: number) => ({ ...decoy.GYS, distanceKm: km });
const curves = {
  perfect: (km: number) => decoy.optimiseMu((mu) => decoy.perfectDecoyRate(at(km), mu, 1.22)).rate,
  vw: (km: number) => decoy.optimiseMu((mu) => decoy.vacuumWeakRate(at(km), mu, 0.05, 1.22)).rate,
  none: (km: number) => decoy.optimiseMu((mu) => decoy.noDecoyRate(at(km), mu, 1.22)).rate,
  fixed: (km: number) => decoy.vacuumWeakRate(at(km), 0.48, 0.05, 1.22),
};
const distances = Array.from({ length: 161 }, (_, i) => i);
const rows = distances.map((km) => [km, ...Object.values(curves).map((f) => f(km))]);
csv('decoy-key-rate.csv', ['km', 'perfect_decoy', 'vacuum_weak_nu0.05', 'no_decoy', 'vacuum_weak_mu0.48_nu0.05'], rows);
const cutoffs = Object.fromEntries(Object.entries(curves).map(([k, f]) => [k, decoy.maxDistance(f)]));

// 2. The link with its detectors (dead time, afterpulsing: src/physics/detector.ts), per pulse sent
// (signal, decoy and vacuum pulses alike), μ = 0.48, ν = 0.05, the default pulse mix.
const link = (km: number, over: Partial<LinkPhysics> = {}): LinkPhysics => ({
  ...DEFAULT_QKD.physics,
  distanceKm: km,
  repetitionRateHz: 1e9,
  ...over,
});
const IDEAL = { deadTimeUs: 0, afterpulseProbability: 0 };
const detectorCurves: Array<{ column: string; label: string; color: string; at: (km: number) => LinkPhysics }> = [
  { column: 'ideal_detectors', label: 'ideal detectors', color: '#000', at: (km) => link(km, IDEAL) },
  {
    column: 'dead_time_1us_100MHz',
    label: 'dead time 1 µs, 100 MHz',
    color: '#9467bd',
    at: (km) => link(km, { repetitionRateHz: 1e8, afterpulseProbability: 0 }),
  },
  {
    column: 'dead_time_1us_1GHz',
    label: 'dead time 1 µs, 1 GHz',
    color: '#1f77b4',
    at: (km) => link(km, { afterpulseProbability: 0 }),
  },
  {
    column: 'default_detectors_1GHz',
    label: `defaults: 1 µs, afterpulses ${DEFAULT_QKD.physics.afterpulseProbability * 100}%, 1 GHz`,
    color: '#2ca02c',
    at: (km) => link(km),
  },
  {
    column: 'afterpulses_2pct_1GHz',
    label: '1 µs, afterpulses 2%, 1 GHz',
    color: '#d62728',
    at: (km) => link(km, { afterpulseProbability: 0.02 }),
  },
];
const detectorRows = distances.map((km) => [km, ...detectorCurves.map((c) => expectedSecretPerPulse(c.at(km)))]);
csv('detector-key-rate.csv', ['km', ...detectorCurves.map((c) => c.column)], detectorRows);

// 3. The simulated link, frames of up to 4e9 pulses at 1 GHz, post-processed end to end in this
// process, with ideal and with the default detectors.
const simulated: Array<Array<number | string>> = [];
for (const detectors of ['ideal', 'default'] as const) {
  for (const km of [5, 25, 50, 75, 100]) {
    const framePulses = km <= 25 ? 200_000_000 : km <= 50 ? 1_000_000_000 : 4_000_000_000;
    const physics = link(km, detectors === 'ideal' ? IDEAL : {});
    const { leader, follower } = qkdPair(qkdSettings(physics, { framePulses }));
    leader.start(null, async (b) => void b.forEach((x) => x.bytes.fill(0)));
    follower.start(null, async (b) => void b.forEach((x) => x.bytes.fill(0)));
    while (leader.stats.framesSeen < 3) await new Promise((r) => setTimeout(r, 50));
    await leader.stop();
    await follower.stop();
    const t = leader.stats.totals;
    const perPulse = t.secretBits / t.pulses;
    const model = expectedSecretPerPulse(physics);
    simulated.push([km, detectors, framePulses, perPulse, leader.info().stats!.qber, model, perPulse * 1e9]);
    console.log(`simulated ${km} km, ${detectors} detectors: ${perPulse.toExponential(3)} bits per pulse sent`);
  }
}
const simulatedCsv = [SIMULATED_HEADER.join(','), ...simulated.map((r) => r.join(','))].join('\n') + '\n';
writeFileSync(DIR + 'simulated-key-rate.csv', simulatedCsv);
console.log(markdownTable(simulatedRateRows(simulatedCsv)));

writeFileSync(
  DIR + 'detector-key-rate.svg',
  svgChart({
    title: 'The link with its detectors: asymptotic bound and simulated frames (GYS channel)',
    x: { label: 'fibre length (km)', min: 0, max: 160 },
    y: { label: 'secret key rate (bits per pulse sent)', min: 1e-8, max: 1e-2, log: true },
    series: [
      ...detectorCurves.map((c, i) => ({
        label: c.label,
        color: c.color,
        points: detectorRows.map((r) => [r[0]!, r[i + 1]!] as const),
      })),
      ...(['ideal', 'default'] as const).map((d) => ({
        label: `simulated, ${d} detectors, 1 GHz`,
        color: d === 'ideal' ? '#000' : '#2ca02c',
        markers: true,
        points: simulated.filter((r) => r[1] === d).map((r) => [Number(r[0]), Number(r[3])] as const),
      })),
    ],
  }),
);

writeFileSync(
  DIR + 'decoy-key-rate.svg',
  svgChart({
    title: 'Decoy-state BB84, GYS parameters (Ma, Qi, Zhao, Lo 2005)',
    x: { label: 'fibre length (km)', min: 0, max: 160 },
    y: { label: 'secret key rate (bits per pulse)', min: 1e-8, max: 1e-2, log: true },
    series: [
      {
        label: `perfect decoy (cut-off ${cutoffs['perfect']} km)`,
        color: '#000',
        points: rows.map((r) => [r[0]!, r[1]!]),
      },
      {
        label: `vacuum + weak decoy ν=0.05 (${cutoffs['vw']} km)`,
        color: '#1f77b4',
        points: rows.map((r) => [r[0]!, r[2]!]),
      },
      { label: `no decoy, GLLP (${cutoffs['none']} km)`, color: '#d62728', points: rows.map((r) => [r[0]!, r[3]!]) },
    ],
  }),
);

// 4. Cascade: efficiency and channel uses versus QBER, n = 10^4 as in Martinez-Mateo et al.
const n = 10_000;
const variants: CascadeVariant[] = ['original', 'yanetal', 'pow2'];
const qbers = [0.01, 0.02, 0.03, 0.04, 0.05, 0.06, 0.07, 0.08, 0.09, 0.1];
const cascadeRows: Array<Array<number | string>> = [];
for (const variant of variants) {
  for (const q of qbers) {
    const fs: number[] = [];
    const rounds: number[] = [];
    let failures = 0;
    for (let run = 0; run < Number(opt.runs); run++) {
      const rng = new Prng([run, Math.round(q * 1000), variants.indexOf(variant), 5]);
      const bob = rng.bits(n);
      const alice = bob.slice();
      let errors = 0;
      for (let i = 0; i < n; i++) {
        if (rng.float() < q) {
          flipBit(alice, i);
          errors++;
        }
      }
      const passes = planPasses(variant, q, n, rng);
      const c = new CascadeCorrector(alice, n, passes);
      const r = new CascadeResponder(bob, n);
      r.addPasses(passes);
      let qs: Uint32Array | null = c.firstQuestions();
      while (qs) qs = c.onAnswers(r.answer(qs));
      if (hammingDistance(alice, bob, n) > 0) failures++;
      fs.push(c.disclosed / (n * decoy.h2(errors / n)));
      rounds.push(c.rounds);
    }
    const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
    cascadeRows.push([variant, q, mean(fs).toFixed(4), mean(rounds).toFixed(1), (failures / fs.length).toFixed(4)]);
  }
}
csv('cascade-efficiency.csv', ['variant', 'qber', 'mean_f', 'mean_channel_uses', 'frame_error_rate'], cascadeRows);
const colors = { original: '#000', yanetal: '#1f77b4', pow2: '#ff7f0e' } as const;
const seriesOf = (col: number) =>
  variants.map((v) => ({
    label: v,
    color: colors[v],
    points: cascadeRows.filter((r) => r[0] === v).map((r) => [Number(r[1]), Number(r[col])] as const),
  }));
writeFileSync(
  DIR + 'cascade-efficiency.svg',
  svgChart({
    title: `Cascade efficiency, n = 10^4, mean of ${opt.runs} frames`,
    x: { label: 'QBER', min: 0.01, max: 0.1 },
    y: { label: 'f = disclosed / (n h(QBER))', min: 1, max: 1.4 },
    series: seriesOf(2),
  }),
);
writeFileSync(
  DIR + 'cascade-channel-uses.svg',
  svgChart({
    title: 'Cascade channel uses (batched round trips), n = 10^4',
    x: { label: 'QBER', min: 0.01, max: 0.1 },
    y: { label: 'round trips', min: 0, max: 400 },
    series: seriesOf(3),
  }),
);
console.log('cut-offs (km):', cutoffs);
console.table(cascadeRows);
