/**
 * Service set-up time: from the operator's request to the controller (`POST /api/v1/services`,
 * layer 4, sae-a1 to sae-d1 on line:4: three links, two trusted nodes) until both ends hold the
 * first key — the source's `qks service run` has agreed it and the destination's has fetched it
 * from its KME by ID. Each end is a `qks service run` process started right after the answer, so
 * the figure includes starting Node.js twice (measured alone below). KMEs and the controller run in
 * this process, on loopback.
 *
 *   npm run build && node dist/bench/service-setup.js [--runs 7]
 */
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { request } from 'undici';
import { freePorts } from '../src/cli/ports.js';
import { builtInTopology } from '../src/domain/topology.js';
import type { Service } from '../src/sdn/controller/services.js';
import { startControlledNetwork } from '../test/helpers/controlled-network.js';

const BIN = fileURLToPath(new URL('../../bin/qks.js', import.meta.url));
const { values: opt } = parseArgs({ options: { runs: { type: 'string', default: '7' } } });
const runs = Number(opt.runs);
const median = (xs: readonly number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

const net = await startControlledNetwork(builtInTopology('line:4'), 500_000);
const { controller, manifest } = net;
await new Promise((r) => setTimeout(r, 3000)); // material on every link

/** Starts `qks service run`; resolves with the time of its first `key` line, and the process. */
function end(id: string, sae: string, where: string[]) {
  const child = spawn(
    process.execPath,
    [BIN, 'service', 'run', '--manifest', manifest, '--id', id, '--sae', sae, ...where],
    {
      stdio: ['ignore', 'pipe', 'ignore'],
    },
  );
  const firstKey = new Promise<number>((resolve, reject) => {
    let out = '';
    child.stdout!.on('data', (d: Buffer) => {
      out += d.toString();
      if (out.includes('"event":"key"')) resolve(performance.now());
    });
    child.once('exit', (code) => reject(new Error(`qks service run (${sae}) exited ${code}`)));
  });
  return { child, firstKey };
}

const setups: number[] = [];
const creates: number[] = [];
for (let i = 0; i < runs; i++) {
  const start = performance.now();
  const res = await request(`${controller.url}/api/v1/services`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({
      source: 'sae-a1',
      destination: 'sae-d1',
      key_length: 32,
      encryption_layer: 4,
      refresh: { type: 'time', value: 300 },
    }),
  });
  const service = (await res.body.json()) as Service;
  creates.push(performance.now() - start);
  const [agree, tls, plain] = await freePorts(3);
  const destination = end(service.id, 'sae-d1', [
    '--agree',
    `127.0.0.1:${agree}`,
    '--listen',
    `127.0.0.1:${tls}`,
    '--target',
    '127.0.0.1:9',
  ]);
  const source = end(service.id, 'sae-a1', [
    '--agree',
    `127.0.0.1:${agree}`,
    '--listen',
    `127.0.0.1:${plain}`,
    '--server',
    `127.0.0.1:${tls}`,
  ]);
  const both = Math.max(await source.firstKey, await destination.firstKey);
  setups.push(both - start);
  for (const e of [source, destination]) {
    const gone = new Promise((r) => e.child.once('exit', r));
    e.child.kill('SIGTERM');
    await gone;
  }
  await request(`${controller.url}/api/v1/services/${service.id}`, { method: 'DELETE' }).then((r) => r.body.dump());
}
const nodeStarts: number[] = [];
for (let i = 0; i < runs; i++) {
  const start = performance.now();
  await new Promise((r) => spawn(process.execPath, [BIN, '--version'], { stdio: 'ignore' }).once('exit', r));
  nodeStarts.push(performance.now() - start);
}
console.log(`Service set-up on line:4 (three links), layer 4, ${runs} runs, medians in ms:\n`);
console.log('| step | median ms |\n| --- | --- |');
console.log(
  `| POST /api/v1/services (path computed, virtual link installed in kme-a) | ${median(creates).toFixed(1)} |`,
);
console.log(`| request to first key at both ends (two qks service run processes) | ${median(setups).toFixed(0)} |`);
console.log(`| starting one qks process (qks --version), for scale | ${median(nodeStarts).toFixed(0)} |`);
console.log(`\nReproduce: npm run build && node dist/bench/service-setup.js --runs ${runs}`);
await net.stop();
