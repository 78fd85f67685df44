/**
 * Post-processing throughput of the QKD link simulator, end to end between two processes on
 * loopback: the leader (Alice) and the follower (Bob), each in its own process, talk over the
 * KME channel's mutual-TLS peer stream. Frames run back to back (not paced). Two modes, run in
 * turn: `physics` simulates the transmitter, fibre and receiver of every frame inside the timed
 * window; `recorded` makes the detection events of a few frames before it and replays them (as if
 * they came from hardware), so that only post-processing is timed. Prints sifted Mbit/s, secret
 * Mbit/s and where each end's CPU time went.
 *
 *   npm run build && node dist/bench/qkd-link.js [--seconds 20] [--runs 3] [--distance-km 25]
 *        [--repetition-rate-hz 1e9] [--frame-pulses 1e9] [--cascade yanetal] [--concurrency 6]
 *        [--modes physics,recorded] [--record-ahead 8] [--dead-time-us 1] [--afterpulse-probability 0.005]
 *        [--cpu-prof-dir DIR]
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
    'frame-pulses': { type: 'string', default: '1e9' },
    cascade: { type: 'string', default: 'yanetal' },
    concurrency: { type: 'string', default: '6' },
    modes: { type: 'string', default: 'physics,recorded' },
    'record-ahead': { type: 'string', default: '8' },
    // Ideal detectors (0 and 0) make the frames of figures measured before the detector model.
    'dead-time-us': { type: 'string', default: String(DEFAULT_QKD.physics.deadTimeUs) },
    'afterpulse-probability': { type: 'string', default: String(DEFAULT_QKD.physics.afterpulseProbability) },
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
    deadTimeUs: Number(opt['dead-time-us']),
    afterpulseProbability: Number(opt['afterpulse-probability']),
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

type Mode = 'physics' | 'recorded';
const modes = opt.modes.split(',') as Mode[];
if (!modes.every((m) => m === 'physics' || m === 'recorded')) throw new Error('--modes: physics, recorded');

async function once(mode: Mode): Promise<{ leader: Report; follower: Report }> {
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
      ...(role === 'leader' && mode === 'recorded' ? ['--record-ahead', opt['record-ahead']] : []),
    ]);
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.pipe(process.stderr);
    const ready = new Promise<void>((resolve) => child.stdout.on('data', () => out.includes('ready') && resolve()));
    const report = new Promise<Report>((resolve, reject) =>
      child.on('exit', (code) => {
        const lines = out.split('\n').filter((l) => l.startsWith('{'));
        // Warnings (pino, JSON) go to stderr; the report is the line with the role.
        for (const l of lines) if (!l.includes('"role"')) process.stderr.write(`${role}: ${l}\n`);
        const line = lines.find((l) => l.includes('"role"'));
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
  follower.child.kill('SIGUSR2'); // the follower's times start now, after any recording
  await new Promise((r) => setTimeout(r, Number(opt.seconds) * 1000));
  leader.child.kill('SIGTERM');
  const l = await leader.report.catch((err: unknown) => {
    follower.child.kill('SIGKILL'); // no end left behind
    throw err;
  });
  follower.child.kill('SIGTERM');
  return { leader: l, follower: await follower.report };
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
type Result = { leader: Report; follower: Report };
const results = new Map<Mode, Result[]>(modes.map((m) => [m, []]));
// The modes alternate, so that both see the same load on a shared machine.
for (let r = 0; r < Number(opt.runs); r++) for (const m of modes) results.get(m)!.push(await once(m));
rmSync(deployment.dir, { recursive: true, force: true });

console.log(`node dist/bench/qkd-link.js ${process.argv.slice(2).join(' ')}`);
console.log(
  `settings: ${settings.physics.distanceKm} km, ${settings.physics.repetitionRateHz / 1e6} MHz, ` +
    `${settings.framePulses} pulses per frame, Cascade ${settings.cascade}, ${opt.concurrency} frames in flight; ` +
    `median of ${opt.runs} runs of ${opt.seconds} s per mode (modes alternating)\n` +
    `physics: the simulated transmitter, fibre and receiver run inside the timed window; recorded: the detection\n` +
    `events of ${opt['record-ahead']} frames are made before it and replayed in turn (as if from hardware)\n`,
);
// Post-processing capacity: sifted bits per CPU-second that the busier end spent on everything
// but the physics simulation (its codecs and TLS included): what one core per end could sustain.
const postProcessingCpu = (r: Report) => r.cpuSeconds - r.stageMs['physics']! / 1000;
const physicsStages = STAGES.filter((st) => st !== 'channel');
const fmt = (rs: Result[], f: (x: Result) => number, digits = 2) => median(rs.map(f)).toFixed(digits);
const pct = (rs: Result[], f: (x: Result) => number) => `${(median(rs.map(f)) * 100).toFixed(0)}%`;
console.log(
  table(
    ['mode', 'sifted Mbit/s', 'secret Mbit/s', 'frames/s', 'QBER', 'f', 'CPU leader', 'CPU follower', 'capacity'],
    modes.map((m) => {
      const rs = results.get(m)!;
      return [
        m,
        fmt(rs, (x) => x.leader.totals.sifted / x.leader.seconds / 1e6),
        fmt(rs, (x) => x.leader.totals.secretBits / x.leader.seconds / 1e6),
        fmt(rs, (x) => x.leader.frames / x.leader.seconds),
        fmt(rs, (x) => x.leader.stats.qber, 4),
        fmt(rs, (x) => x.leader.stats.reconciliationEfficiency, 3),
        pct(rs, (x) => x.leader.cpuSeconds / x.leader.seconds),
        pct(rs, (x) => x.follower.cpuSeconds / x.follower.seconds),
        `${fmt(rs, (x) => x.leader.totals.sifted / Math.max(postProcessingCpu(x.leader), postProcessingCpu(x.follower)) / 1e6)} Mbit/s`,
      ];
    }),
  ),
);
console.log(
  '\n"capacity": sifted bits per CPU-second of the busier end, physics excluded (one core per end).\n' +
    'Share of each end\'s CPU time by stage ("other": message codecs, TLS, garbage collection; the stages\n' +
    "run on the worker thread, amplification and Alice's Cascade views, count its wall time):\n",
);
const share = (rs: Result[], end: 'leader' | 'follower', stage: string) => {
  const shares = rs.map((x) => {
    const r = x[end];
    const cpuMs = r.cpuSeconds * 1000;
    const staged = physicsStages.reduce((a, st) => a + r.stageMs[st]!, 0);
    // Worker-thread stages count their wall time, which can exceed the CPU they got: "other" ≥ 0.
    return ((stage === 'other' ? Math.max(0, cpuMs - staged) : r.stageMs[stage]!) / cpuMs) * 100;
  });
  return `${median(shares).toFixed(1)}%`;
};
const columns = [...physicsStages, 'other'];
console.log(
  table(
    ['mode', 'end', ...columns],
    modes.flatMap((m) =>
      (['leader', 'follower'] as const).map((end) => [
        m,
        end === 'leader' ? 'leader (Alice)' : 'follower (Bob)',
        ...columns.map((st) => share(results.get(m)!, end, st)),
      ]),
    ),
  ),
);
