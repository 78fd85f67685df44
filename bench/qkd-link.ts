/**
 * Post-processing throughput of the QKD link simulator, end to end between two processes on
 * loopback: the leader (Alice) and the follower (Bob), each in its own process, talk over mutual
 * TLS through the KME channel's code. Frames run back to back (not paced). Prints sifted Mbit/s,
 * secret Mbit/s and where each end's time went.
 *
 *   npm run build && node dist/bench/qkd-link.js [--seconds 20] [--runs 3] [--distance-km 25]
 *        [--repetition-rate-hz 1e9] [--frame-pulses 1e8] [--cascade yanetal] [--concurrency 3]
 *        [--cpu-prof-dir DIR]   (a V8 CPU profile of each end)
 */
import { spawn } from 'node:child_process';
import { rmSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { freePorts } from '../src/cli/ports.js';
import { CASCADE_VARIANTS, type CascadeVariant } from '../src/qkd/cascade-plan.js';
import { DEFAULT_QKD, type QkdSettings } from '../src/sources/qkd/settings.js';
import { STAGES } from '../src/sources/qkd/stages.js';
import { createDeployment } from '../test/helpers/two-kmes.js';
import { table } from './stats.js';

const END = fileURLToPath(new URL('./qkd-end.js', import.meta.url));
const { values: opt } = parseArgs({
  options: {
    seconds: { type: 'string', default: '20' },
    runs: { type: 'string', default: '3' },
    'distance-km': { type: 'string', default: '25' },
    'repetition-rate-hz': { type: 'string', default: '1e9' },
    'frame-pulses': { type: 'string', default: '1e8' },
    cascade: { type: 'string', default: 'yanetal' },
    concurrency: { type: 'string', default: '3' },
    'cpu-prof-dir': { type: 'string' },
  },
});
if (!CASCADE_VARIANTS.includes(opt.cascade as CascadeVariant)) throw new Error('unknown --cascade');
const settings: QkdSettings = {
  ...DEFAULT_QKD,
  framePulses: Number(opt['frame-pulses']),
  cascade: opt.cascade as CascadeVariant,
  physics: {
    ...DEFAULT_QKD.physics,
    distanceKm: Number(opt['distance-km']),
    repetitionRateHz: Number(opt['repetition-rate-hz']),
  },
};
const deployment = await createDeployment({ source: 'qkd' });

interface Report {
  role: string;
  seconds: number;
  totals: { sifted: number; secretBits: number; clicks: number };
  frames: number;
  stats: { qber: number; reconciliationEfficiency: number };
  stageMs: Record<string, number>;
  cpuSeconds: number;
}

async function once(): Promise<{ leader: Report; follower: Report }> {
  const [port] = await freePorts(1);
  const start = (role: string) => {
    const profile = opt['cpu-prof-dir'] ? ['--cpu-prof', `--cpu-prof-dir=${opt['cpu-prof-dir']}`] : [];
    const child = spawn(process.execPath, [
      ...profile,
      END,
      '--role',
      role,
      '--deployment',
      deployment.dir,
      '--port',
      String(port),
      '--settings',
      JSON.stringify(settings),
      '--concurrency',
      opt.concurrency,
    ]);
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.pipe(process.stderr);
    const ready = new Promise<void>((resolve) => child.stdout.on('data', () => out.includes('ready') && resolve()));
    const report = new Promise<Report>((resolve, reject) =>
      child.on('exit', (code) => {
        const line = out.split('\n').find((l) => l.startsWith('{'));
        if (code !== 0 || !line) reject(new Error(`${role} exited with ${code}`));
        else resolve(JSON.parse(line) as Report);
      }),
    );
    return { child, ready, report };
  };
  const follower = start('follower');
  await follower.ready;
  const leader = start('leader');
  await leader.ready;
  await new Promise((r) => setTimeout(r, Number(opt.seconds) * 1000));
  leader.child.kill('SIGTERM');
  const l = await leader.report;
  follower.child.kill('SIGTERM');
  return { leader: l, follower: await follower.report };
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const results: Array<{ leader: Report; follower: Report }> = [];
for (let r = 0; r < Number(opt.runs); r++) results.push(await once());
rmSync(deployment.dir, { recursive: true, force: true });

const mbps = (f: (x: (typeof results)[number]) => number) => median(results.map(f)).toFixed(2);
console.log(`node dist/bench/qkd-link.js ${process.argv.slice(2).join(' ')}`);
console.log(
  `settings: ${settings.physics.distanceKm} km, ${settings.physics.repetitionRateHz / 1e6} MHz, ` +
    `${settings.framePulses} pulses per frame, Cascade ${settings.cascade}, ${opt.concurrency} frames in flight; ` +
    `median of ${results.length} runs of ${opt.seconds} s\n`,
);
// Post-processing capacity: sifted bits per CPU-second that the busier end spent on everything
// but the physics simulation (its codecs, TLS and HTTP included). A derived figure: what the
// post-processing could sustain if the detection events came from hardware.
const postProcessingCpu = (r: Report) => r.cpuSeconds - r.stageMs['physics']! / 1000;
const physicsStages = STAGES.filter((st) => st !== 'channel');
console.log(
  table(
    [
      'sifted Mbit/s',
      'secret Mbit/s',
      'frames/s',
      'QBER',
      'f',
      'CPU leader',
      'CPU follower',
      'post-processing capacity',
    ],
    [
      [
        mbps((x) => x.leader.totals.sifted / x.leader.seconds / 1e6),
        mbps((x) => x.leader.totals.secretBits / x.leader.seconds / 1e6),
        mbps((x) => x.leader.frames / x.leader.seconds),
        median(results.map((x) => x.leader.stats.qber)).toFixed(4),
        median(results.map((x) => x.leader.stats.reconciliationEfficiency)).toFixed(3),
        `${(median(results.map((x) => x.leader.cpuSeconds / x.leader.seconds)) * 100).toFixed(0)}%`,
        `${(median(results.map((x) => x.follower.cpuSeconds / x.leader.seconds)) * 100).toFixed(0)}%`,
        `${mbps((x) => x.leader.totals.sifted / Math.max(postProcessingCpu(x.leader), postProcessingCpu(x.follower)) / 1e6)} Mbit/s`,
      ],
    ],
  ),
);
console.log('\nShare of each end\'s CPU time by stage ("other": message codecs, TLS, HTTP, garbage collection):\n');
const share = (rep: (x: (typeof results)[number]) => Report, stage: string) => {
  const shares = results.map((x) => {
    const r = rep(x);
    const cpuMs = r.cpuSeconds * 1000;
    const staged = physicsStages.reduce((a, st) => a + r.stageMs[st]!, 0);
    return ((stage === 'other' ? cpuMs - staged : r.stageMs[stage]!) / cpuMs) * 100;
  });
  return `${median(shares).toFixed(1)}%`;
};
const columns = [...physicsStages, 'other'];
console.log(
  table(
    ['end', ...columns],
    [
      ['leader (Alice)', ...columns.map((st) => share((x) => x.leader, st))],
      ['follower (Bob)', ...columns.map((st) => share((x) => x.follower, st))],
    ],
  ),
);
