import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { PceServer, type PathComputationRequest, type PceServerOptions } from '../../src/sdn/pcep/index.js';
import {
  closeMessage,
  endPointsObject,
  errorObject,
  ipv4Subobject,
  keepaliveMessage,
  openMessage,
  pcepMessage,
  pcepObject,
  qkdObject,
  rpObject,
  TestPcc,
} from '../helpers/pcep-pcc.js';

const HANDLE = Buffer.from(
  '4a0e75e803d7f69e9a29a10d1c7b3110acc39598b4789f4f0d0ec140fbca461d6ca5d2a8a8ccf0d49571767d31b6e0694ea010a0958998ebdf7d3585e3e6052f',
  'hex',
);
const HOPS = ['127.0.1.1', '127.0.1.3', '127.0.1.5'];

/** A log that keeps every line, so tests can look at what the PCE said. */
function memoryLog() {
  const lines: Array<{ level: string; msg: string; obj: object }> = [];
  const at = (level: string) => (obj: object, msg: string) => void lines.push({ level, msg, obj });
  return { lines, debug: at('debug'), info: at('info'), warn: at('warn'), error: at('error') };
}

async function until(condition: () => boolean, ms = 2000): Promise<void> {
  for (const end = Date.now() + ms; !condition(); await new Promise((r) => setTimeout(r, 10))) {
    if (Date.now() > end) throw new Error('condition not met in time');
  }
}

describe('PCE server over TCP, driven by a PCC written from RFC 5440', () => {
  const asked: PathComputationRequest[] = [];
  const log = memoryLog();
  let pce: PceServer;
  const start = (extra: Partial<PceServerOptions> = {}) =>
    PceServer.listen({
      port: 0,
      log,
      computePath: async (r) => {
        asked.push(r);
        if (r.destination === '127.0.1.9') return null;
        if (r.destination === '127.0.1.8') throw new Error('topology unavailable');
        if (r.destination === '127.0.1.7') return { hops: ['127.0.1.1', 'router-seven'] };
        return { hops: HOPS, ...(r.qkd ? { keyHandle: HANDLE } : {}) };
      },
      ...extra,
    });
  const pcc = async () => TestPcc.connect(pce.address.port);

  before(async () => {
    pce = await start();
  });
  after(() => pce.close());

  it('sets up a session: the PCE opens with keepalive 30, deadtimer 120, then Keepalive answers our Open', async () => {
    const c = await pcc();
    const theirOpen = await c.establish();
    assert.deepEqual(theirOpen.subarray(0, 11), Buffer.from('2001000c0110000820' + '1e78', 'hex'));
    c.end();
    await c.closed;
  });

  it('answers a PCReq with the QKD parameters: RP, then ERO with one IPv4 /32 per hop and the QE subobject', async () => {
    const c = await pcc();
    await c.establish();
    const hopCount = pcepObject(6, 1, [0, 0, 0, 3, 0x40, 0xa0, 0, 0]); // METRIC: hop count, 5.0
    const qkd = qkdObject(32, 2, 0xfc, 0x03e8, 10);
    c.send(pcepMessage(3, rpObject(42, 3), endPointsObject('127.0.1.1', '127.0.1.5'), hopCount, qkd));
    const reply = await c.next();
    const ero = [...HOPS.flatMap(ipv4Subobject), 0x67, 0x4a, ...HANDLE, 0x00, 0x20, 0x02, 0xfc, 0x03, 0xe8, 0x00, 0x0a];
    assert.deepEqual(reply.bytes, pcepMessage(4, rpObject(42, 3), pcepObject(7, 1, ero)));
    assert.equal(reply.bytes.length, 4 + 12 + 4 + 3 * 8 + 74); // ERO of 102 bytes: unpadded
    assert.deepEqual(asked.at(-1), {
      requestId: 42,
      source: '127.0.1.1',
      destination: '127.0.1.5',
      qkd: { keyLength: 32, encryptionLayer: 2, refreshType: 0xfc, refreshValue: 0x03e8, algorithm: 10 },
      metrics: [{ kind: 'metric', p: false, i: false, flags: 0, metricType: 3, value: 5 }],
      priority: 3,
    });
    // The log names the request and the key handle (an identifier) in hex.
    const answered = log.lines.find(
      (l) => l.msg === 'PCReq answered' && 'requestId' in l.obj && l.obj.requestId === 42,
    );
    assert.equal((answered?.obj as { keyHandle?: string }).keyHandle, HANDLE.toString('hex'));
    c.end();
    await c.closed;
  });

  it('without QKD parameters: no QE subobject; no path, a failed computation or an unencodable hop: NO-PATH', async () => {
    const c = await pcc();
    await c.establish();
    c.send(pcepMessage(3, rpObject(1), endPointsObject('127.0.1.1', '127.0.1.5')));
    assert.deepEqual(
      (await c.next()).bytes,
      pcepMessage(4, rpObject(1), pcepObject(7, 1, HOPS.flatMap(ipv4Subobject))),
    );
    for (const [id, to] of [
      [2, '127.0.1.9'],
      [3, '127.0.1.8'],
      [4, '127.0.1.7'],
    ] as const) {
      c.send(pcepMessage(3, rpObject(id), endPointsObject('127.0.1.1', to), qkdObject(32, 2, 0xfc, 1000, 10)));
      assert.deepEqual((await c.next()).bytes, pcepMessage(4, rpObject(id), pcepObject(3, 1, [0, 0, 0, 0])));
    }
    assert.ok(log.lines.some((l) => l.level === 'error' && l.msg.includes('NO-PATH')));
    c.end();
    await c.closed;
  });

  it('refuses bad requests with PCErr (the RP echoed, P flag cleared) and keeps the session', async () => {
    const c = await pcc();
    await c.establish();
    const cases: Array<[number[][], number[] | null, number, number]> = [
      [
        [rpObject(5), endPointsObject('127.0.1.1', '127.0.1.5'), pcepObject(200, 1, [0, 0, 0, 0])],
        rpObject(5, 0, false),
        3,
        1,
      ],
      [[rpObject(6), pcepObject(5, 1, [0, 0, 0, 0], true)], rpObject(6, 0, false), 6, 3],
      [
        [rpObject(7), endPointsObject('127.0.1.1', '127.0.1.5'), pcepObject(9, 1, new Array(16).fill(0), true)],
        rpObject(7, 0, false),
        4,
        1,
      ],
      [[endPointsObject('127.0.1.1', '127.0.1.5')], null, 6, 1],
      [[rpObject(11), pcepObject(4, 2, new Array(32).fill(0), true)], rpObject(11, 0, false), 4, 2],
      [[rpObject(12), endPointsObject('127.0.1.1', '127.0.1.5'), rpObject(13)], rpObject(13, 0, false), 6, 3],
      [
        [rpObject(9), endPointsObject('127.0.1.1', '127.0.1.5'), pcepObject(4, 2, new Array(32).fill(0), true)],
        rpObject(9, 0, false),
        4,
        2,
      ],
      [[rpObject(8, 0, false), endPointsObject('127.0.1.1', '127.0.1.5')], rpObject(8, 0, false), 10, 1],
    ];
    for (const [objects, rp, type, value] of cases) {
      c.send(pcepMessage(3, ...objects));
      assert.deepEqual((await c.next()).bytes, pcepMessage(6, ...(rp ? [rp] : []), errorObject(type, value)));
    }
    // An object it does not use, without the P flag (here LSPA, class 9), is ignored.
    c.send(
      pcepMessage(3, rpObject(10), endPointsObject('127.0.1.1', '127.0.1.5'), pcepObject(9, 1, new Array(16).fill(0))),
    );
    assert.equal((await c.next()).type, 4);
    c.end();
    await c.closed;
  });

  it('a malformed message (object length 3) on an up session: Close with reason 3, connection released', async () => {
    const c = await pcc();
    await c.establish();
    c.send(Buffer.from('2003000802100003', 'hex'));
    assert.deepEqual((await c.next()).bytes, closeMessage(3));
    await c.closed;
  });

  it('a version error on an up session: PCErr 1/8, then Close with reason 3', async () => {
    const c = await pcc();
    await c.establish();
    c.send(Buffer.from('40020004', 'hex'));
    assert.deepEqual((await c.next()).bytes, pcepMessage(6, errorObject(1, 8)));
    assert.deepEqual((await c.next()).bytes, closeMessage(3));
    await c.closed;
  });

  it("after the PCC's Open, before its Keepalive: a PCReq gets PCErr 1/1, a PCErr ends the connection", async () => {
    const early = pcepMessage(3, rpObject(1), endPointsObject('127.0.1.1', '127.0.1.5'));
    for (const [bytes, answer] of [
      [early, pcepMessage(6, errorObject(1, 1))],
      [pcepMessage(6, errorObject(1, 3)), null],
    ] as const) {
      const c = await pcc();
      assert.equal((await c.next()).type, 1);
      c.send(openMessage(30, 120, 1));
      assert.equal((await c.next()).type, 2);
      c.send(bytes);
      if (answer) assert.deepEqual((await c.next()).bytes, answer);
      await c.closed;
    }
  });

  it('before Open: a non-Open message gets PCErr 1/1, a bad version PCErr 1/8, and the connection ends', async () => {
    for (const [bytes, value] of [
      [keepaliveMessage(), 1],
      [Buffer.from('40010004', 'hex'), 8],
    ] as const) {
      const c = await pcc();
      assert.equal((await c.next()).type, 1);
      c.send(bytes);
      assert.deepEqual((await c.next()).bytes, pcepMessage(6, errorObject(1, value)));
      await c.closed;
    }
  });

  it('a second Open on an up session: PCErr 1/1 then Close', async () => {
    const c = await pcc();
    await c.establish();
    c.send(openMessage(30, 120, 8));
    assert.deepEqual((await c.next()).bytes, pcepMessage(6, errorObject(1, 1)));
    assert.deepEqual((await c.next()).bytes, closeMessage(1));
    await c.closed;
  });

  it('the PCC closes: the PCE releases the session', async () => {
    const c = await pcc();
    await c.establish();
    c.send(closeMessage(1));
    await c.closed;
    await until(() => pce.sessions.length === 0);
  });

  it('close() sends Close (reason 1) to every session and stops listening', async () => {
    const own = await start();
    const { port } = own.address;
    const c = await TestPcc.connect(port);
    await c.establish();
    await own.close();
    assert.deepEqual((await c.next()).bytes, closeMessage(1));
    await c.closed;
    await assert.rejects(TestPcc.connect(port));
  });
});

describe('PCE session timers', () => {
  const log = memoryLog();
  const computePath = async () => null;

  it('a peer silent for its DeadTimer (1 s) is closed with reason 2', async () => {
    const pce = await PceServer.listen({ port: 0, log, computePath });
    try {
      const c = await TestPcc.connect(pce.address.port);
      await c.establish(0, 1);
      const t0 = Date.now();
      assert.deepEqual((await c.next()).bytes, closeMessage(2));
      const waited = Date.now() - t0;
      assert.ok(waited > 800 && waited < 2500, `closed after ${waited} ms`);
      await c.closed;
    } finally {
      await pce.close();
    }
  });

  it('Keepalives keep a session up, and the PCE sends its own every keepalive period', async () => {
    const pce = await PceServer.listen({ port: 0, log, computePath, keepaliveSeconds: 1, deadTimerSeconds: 4 });
    try {
      const c = await TestPcc.connect(pce.address.port);
      const open = await c.establish(1, 2);
      assert.deepEqual(open.subarray(9, 11), Buffer.from([1, 4]));
      for (let n = 0; n < 3; n++) {
        assert.equal((await c.next(1800)).type, 2);
        c.send(keepaliveMessage());
      }
      assert.equal(pce.sessions[0]?.state, 'up');
      c.end();
      await c.closed;
    } finally {
      await pce.close();
    }
  });

  it('no Open within OpenWait: PCErr 1/2; no Keepalive within KeepWait: PCErr 1/7', async () => {
    const pce = await PceServer.listen({ port: 0, log, computePath, openWaitMs: 200, keepWaitMs: 200 });
    try {
      const silent = await TestPcc.connect(pce.address.port);
      assert.equal((await silent.next()).type, 1);
      assert.deepEqual((await silent.next()).bytes, pcepMessage(6, errorObject(1, 2)));
      await silent.closed;
      const halfway = await TestPcc.connect(pce.address.port);
      assert.equal((await halfway.next()).type, 1);
      halfway.send(openMessage(30, 120, 1));
      assert.equal((await halfway.next()).type, 2);
      assert.deepEqual((await halfway.next()).bytes, pcepMessage(6, errorObject(1, 7)));
      await halfway.closed;
    } finally {
      await pce.close();
    }
  });
});
