import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import {
  decodeMessage,
  encodeMessage,
  MAX_MESSAGE_BYTES,
  PcepDecodeError,
  PcepFramer,
  type EroSubobject,
  type PcepMessage,
  type PcepObject,
} from '../../src/sdn/pcep/index.js';

// A fixed seed: every run checks the same cases, and a failure names the case to replay.
const RUNS = { seed: 0x9ce9, numRuns: 400 } as const;

// Plain objects, as the decoder makes (fc.record's default has a null prototype).
const rec = <T>(model: { [K in keyof T]: fc.Arbitrary<T[K]> }) => fc.record<T>(model, { noNullPrototype: true });
const flags = { p: fc.boolean(), i: fc.boolean() };
const u8 = fc.integer({ min: 0, max: 0xff });
const u16 = fc.integer({ min: 0, max: 0xffff });
const u32 = fc.integer({ min: 0, max: 0xffffffff });
const ipv4 = fc.ipV4();
const words = (max: number) =>
  fc.integer({ min: 0, max }).chain((n) => fc.uint8Array({ minLength: 4 * n, maxLength: 4 * n }));
const tlvs = words(3).map((b) => Buffer.from(b));
const bytes = (max: number) => fc.uint8Array({ maxLength: max }).map((b) => Buffer.from(b));
const qkd = { keyLength: u16, encryptionLayer: u8, refreshType: u8, refreshValue: u16, algorithm: u16 };

const subobject: fc.Arbitrary<EroSubobject> = fc.oneof(
  rec({
    kind: fc.constant('ipv4' as const),
    loose: fc.boolean(),
    address: ipv4,
    prefixLength: fc.integer({ min: 0, max: 32 }),
  }),
  rec({
    kind: fc.constant('qe' as const),
    loose: fc.boolean(),
    keyHandle: fc.uint8Array({ minLength: 64, maxLength: 64 }).map((b) => Buffer.from(b)),
    ...qkd,
  }),
  rec({
    kind: fc.constant('raw' as const),
    loose: fc.boolean(),
    type: fc.integer({ min: 2, max: 0x7f }).filter((t) => t !== 0x67),
    body: bytes(20),
  }),
);

const object: fc.Arbitrary<PcepObject> = fc.oneof(
  rec({
    kind: fc.constant('open' as const),
    ...flags,
    flags: fc.integer({ min: 0, max: 31 }),
    keepalive: u8,
    deadTimer: u8,
    sessionId: u8,
    tlvs,
  }),
  rec({ kind: fc.constant('rp' as const), ...flags, flags: u32, requestId: u32, tlvs }),
  rec({ kind: fc.constant('no-path' as const), ...flags, natureOfIssue: u8, flags: u16, tlvs }),
  rec({ kind: fc.constant('end-points' as const), ...flags, source: ipv4, destination: ipv4 }),
  rec({
    kind: fc.constant('metric' as const),
    ...flags,
    flags: u8,
    metricType: u8,
    value: fc.float({ noNaN: true }),
  }),
  rec({ kind: fc.constant('ero' as const), ...flags, subobjects: fc.array(subobject, { maxLength: 5 }) }),
  rec({ kind: fc.constant('vendor-info' as const), ...flags, enterpriseNumber: u32, info: tlvs }),
  rec({ kind: fc.constant('error' as const), ...flags, flags: u8, errorType: u8, errorValue: u8, tlvs }),
  rec({ kind: fc.constant('close' as const), ...flags, flags: u8, reason: u8, tlvs }),
  rec({
    kind: fc.constant('raw' as const),
    ...flags,
    objectClass: u8,
    objectType: fc.integer({ min: 0, max: 15 }),
    body: words(4).map((b) => Buffer.from(b)),
  }).filter((o) => !(o.objectType === 1 && [1, 2, 3, 4, 6, 7, 13, 15, 34].includes(o.objectClass))),
);

const pick = <K extends PcepObject['kind']>(kind: K) =>
  object.filter((o): o is Extract<PcepObject, { kind: K }> => o.kind === kind);
const objects = fc.array(object, { maxLength: 6 });

const message: fc.Arbitrary<PcepMessage> = fc.oneof(
  rec({ type: fc.constant('open' as const), open: pick('open') }),
  fc.constant({ type: 'keepalive' as const }),
  rec({ type: fc.constant('pcreq' as const), objects }),
  rec({ type: fc.constant('pcrep' as const), objects }),
  rec({
    type: fc.constant('pcerr' as const),
    objects: fc.tuple(objects, pick('error')).map(([os, e]) => [...os, e]),
  }),
  rec({ type: fc.constant('close' as const), close: pick('close') }),
  rec({
    type: fc.constant('unknown' as const),
    messageType: u8.filter((t) => ![1, 2, 3, 4, 6, 7].includes(t)),
    body: bytes(24),
  }),
);

/** Decodes, and insists that any failure is a PcepDecodeError (never a RangeError or TypeError). */
function decodeOrCode(buf: Buffer, max?: number): PcepMessage | string {
  try {
    return decodeMessage(buf, max);
  } catch (e) {
    assert.ok(e instanceof PcepDecodeError, `not a PcepDecodeError: ${String(e)}`);
    return e.code;
  }
}

describe('PCEP codec properties (seeded)', () => {
  it('every message and object round-trips: decode(encode(m)) equals m', () => {
    fc.assert(
      fc.property(message, (m) => {
        assert.deepEqual(decodeMessage(encodeMessage(m), 0xffff), m);
      }),
      RUNS,
    );
  });

  it('every truncation point of a valid message is refused as TRUNCATED', () => {
    fc.assert(
      fc.property(message, (m) => {
        const bytes = encodeMessage(m);
        for (let n = 0; n < bytes.length; n++) assert.equal(decodeOrCode(bytes.subarray(0, n), 0xffff), 'TRUNCATED');
      }),
      { ...RUNS, numRuns: 150 },
    );
  });

  it('a message cut short with its length field patched is refused or decodes to exactly those bytes', () => {
    fc.assert(
      fc.property(message, fc.nat(), (m, cut) => {
        const bytes = Buffer.from(encodeMessage(m));
        const n = 4 + (cut % (bytes.length - 3));
        const cutBytes = bytes.subarray(0, n);
        cutBytes.writeUInt16BE(n, 2);
        const got = decodeOrCode(cutBytes, 0xffff);
        if (typeof got !== 'string') assert.deepEqual(encodeMessage(got), cutBytes);
      }),
      RUNS,
    );
  });

  it('random corruption never crashes the decoder, and what decodes re-encodes to the same bytes', () => {
    fc.assert(
      fc.property(message, fc.array(fc.tuple(fc.nat(), u8), { minLength: 1, maxLength: 4 }), (m, flips) => {
        const bytes = Buffer.from(encodeMessage(m));
        for (const [at, value] of flips) bytes[at % bytes.length] = value;
        const got = decodeOrCode(bytes, 0xffff);
        if (typeof got !== 'string') assert.deepEqual(encodeMessage(got), bytes);
      }),
      { ...RUNS, numRuns: 2000 },
    );
  });

  it('the framer cuts a stream at any chunk boundaries into the same messages', () => {
    fc.assert(
      fc.property(
        fc.array(message, { minLength: 1, maxLength: 5 }),
        fc.array(fc.integer({ min: 1, max: 40 })),
        (ms, sizes) => {
          const stream = Buffer.concat(ms.map(encodeMessage));
          const framer = new PcepFramer(0xffff);
          const frames: Buffer[] = [];
          for (let at = 0, k = 0; at < stream.length; k++) {
            const size = sizes.length ? sizes[k % sizes.length]! : stream.length;
            frames.push(...framer.push(stream.subarray(at, at + size)));
            at += size;
          }
          assert.deepEqual(
            frames.map((f) => decodeMessage(f, 0xffff)),
            ms,
          );
        },
      ),
      RUNS,
    );
  });
});

const hex = (s: string) => Buffer.from(s.replace(/\s+/g, ''), 'hex');
const codeOf = (s: string) => decodeOrCode(hex(s));

describe('PCEP decoder rejections', () => {
  it('oversized: a message above MAX_MESSAGE_BYTES (16 KiB) is refused from its header alone', () => {
    const hops = Array.from({ length: 2100 }, (_, n) => ({
      kind: 'ipv4' as const,
      loose: false,
      address: `10.0.${n >> 8}.${n & 255}`,
      prefixLength: 32,
    }));
    const big = encodeMessage({ type: 'pcrep', objects: [{ kind: 'ero', p: false, i: false, subobjects: hops }] });
    assert.ok(big.length > MAX_MESSAGE_BYTES);
    assert.equal(decodeOrCode(big), 'MESSAGE_TOO_LARGE');
    assert.equal(decodeOrCode(big.subarray(0, 4)), 'MESSAGE_TOO_LARGE');
    assert.equal(typeof decodeOrCode(big, 0xffff), 'object');
    assert.throws(
      () => new PcepFramer().push(big.subarray(0, 4)),
      (e: PcepDecodeError) => e.code === 'MESSAGE_TOO_LARGE',
    );
    assert.throws(() => encodeMessage({ type: 'unknown', messageType: 9, body: Buffer.alloc(0x10000) }), TypeError);
  });

  it('headers: version, reserved flags, length below the header, bytes after the message', () => {
    assert.equal(codeOf('40 02 00 04'), 'BAD_VERSION');
    assert.deepEqual(new PcepFramer().push(hex('20 02 00 04')).length, 1);
    assert.throws(
      () => decodeMessage(hex('40 02 00 04')),
      (e: PcepDecodeError) => e.reply?.errorType === 1 && e.reply.errorValue === 8,
    );
    assert.equal(codeOf('21 02 00 04'), 'RESERVED_BITS');
    assert.equal(codeOf('20 02 00 03'), 'BAD_LENGTH');
    assert.equal(codeOf('20 02 00 04 00'), 'BAD_LENGTH');
    assert.equal(codeOf('20 02 00 08 20 10 00 04'), 'BAD_MESSAGE');
    assert.equal(codeOf('20 07 00 08 0f 10 00 04'), 'TRUNCATED');
    assert.equal(codeOf('20 01 00 04'), 'BAD_MESSAGE'); // Open without OPEN
    assert.equal(codeOf('20 06 00 10 02 10 00 0c 00 00 00 00 00 00 00 01'), 'BAD_MESSAGE'); // PCErr without PCEP-ERROR
  });

  it('objects: length below 4, overrunning the message, not a multiple of 4, reserved header bits', () => {
    assert.equal(codeOf('20 07 00 08 0f 10 00 02'), 'BAD_LENGTH');
    assert.equal(codeOf('20 07 00 0c 0f 10 00 10 00 00 00 01'), 'BAD_LENGTH');
    assert.equal(codeOf('20 03 00 0a 02 10 00 06 00 00'), 'BAD_LENGTH');
    assert.equal(codeOf('20 07 00 0c 0f 14 00 08 00 00 00 01'), 'RESERVED_BITS');
  });

  it('object bodies: OPEN version, END-POINTS length, METRIC NaN, IPv4 prefix and reserved byte', () => {
    assert.equal(codeOf('20 01 00 0c 01 10 00 08 40 1e 78 01'), 'BAD_VERSION');
    assert.equal(codeOf('20 03 00 0c 04 10 00 08 7f 00 01 01'), 'BAD_LENGTH');
    assert.equal(codeOf('20 04 00 10 06 10 00 0c 00 00 00 01 7f c0 00 00'), 'BAD_VALUE');
    assert.equal(codeOf('20 04 00 10 07 10 00 0c 01 08 0a 01 01 05 21 00'), 'BAD_VALUE');
    assert.equal(codeOf('20 04 00 10 07 10 00 0c 01 08 0a 01 01 05 20 01'), 'RESERVED_BITS');
    assert.equal(codeOf('20 04 00 10 07 10 00 0c 01 09 0a 01 01 05 20 00'), 'BAD_LENGTH');
  });
});
