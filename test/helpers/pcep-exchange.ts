/**
 * One PCEP session for a capture, run as its own process (inside a network namespace the test
 * made): the production PCE on 127.0.0.1:4189 and the test's PCC. The PCC sets the session up,
 * asks for two paths with the slides' QKD parameters (one answered with the key handle unset, one
 * with it set), then closes. Prints the PCReps in hex, one per line; exits non-zero on any surprise.
 */
import { PceServer } from '../../src/sdn/pcep/index.js';
import { closeMessage, endPointsObject, pcepMessage, qkdObject, rpObject, TestPcc } from './pcep-pcc.js';

const HANDLE = Buffer.from(
  '4a0e75e803d7f69e9a29a10d1c7b3110acc39598b4789f4f0d0ec140fbca461d6ca5d2a8a8ccf0d49571767d31b6e0694ea010a0958998ebdf7d3585e3e6052f',
  'hex',
);
const silent = { debug() {}, info() {}, warn() {}, error() {} };

const pce = await PceServer.listen({
  log: silent,
  computePath: async (r) => ({
    hops: ['127.0.1.1', '127.0.1.3', '127.0.1.5'],
    ...(r.requestId === 2 ? { keyHandle: HANDLE } : {}),
  }),
});
const pcc = await TestPcc.connect(4189);
await pcc.establish();
for (const [id, refreshValue] of [
  [1, 0x03e8],
  [2, 0xffe8],
] as const) {
  pcc.send(
    pcepMessage(3, rpObject(id), endPointsObject('127.0.1.1', '127.0.1.5'), qkdObject(32, 2, 0xfc, refreshValue, 10)),
  );
  const reply = await pcc.next();
  if (reply.type !== 4) throw new Error(`expected PCRep, got type ${reply.type}`);
  process.stdout.write(`${reply.bytes.toString('hex')}\n`);
}
pcc.send(closeMessage(1));
await pcc.closed;
await pce.close();
