import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import {
  DECODE_ERROR_MEANING,
  decodeMessage,
  pathReplyObjects,
  qkdVendorInfo,
  readPathRequests,
  encodeMessage,
  encodeObject,
  encodeSubobject,
  PcepDecodeError,
  readObject,
  readSubobjects,
  type EroObject,
} from '../../src/sdn/pcep/index.js';
import { Reader } from '../../src/sdn/pcep/reader.js';

const hex = (s: string) => Buffer.from(s.replace(/\s+/g, ''), 'hex');

// The slides' two RSVP captures (shared reference 001, "Experimental validation RSVP"), as printed
// there in hex. Capture 1 shows only the end of the IPv4 subobject before the QE subobject ("20 00").
const CAPTURE_1 = hex(`
  20 00 67 4a 00 00 00 00 00 00 00 00 00 00 00 00
  00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00
  00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00
  00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00
  00 00 00 00 00 20 02 fc 03 e8 00 0a`);
const CAPTURE_2 = hex(`
  01 08 0a 01 01 05 20 00 67 4a 4a 0e 75 e8
  03 d7 f6 9e 9a 29 a1 0d 1c 7b 31 10 ac c3 95 98
  b4 78 9f 4f 0d 0e c1 40 fb ca 46 1d 6c a5 d2 a8
  a8 cc f0 d4 95 71 76 7d 31 b6 e0 69 4e a0 10 a0
  95 89 98 eb df 7d 35 85 e3 e6 05 2f 00 20 02 fc
  ff e8 00 0a`);
const HANDLE_2 =
  '4a0e75e803d7f69e9a29a10d1c7b3110acc39598b4789f4f0d0ec140fbca461d6ca5d2a8a8ccf0d49571767d31b6e0694ea010a0958998ebdf7d3585e3e6052f';

const subobjects = (bytes: Buffer) => readSubobjects(new Reader(bytes));

describe('QE ERO subobject: the slides captures, byte for byte', () => {
  it('capture 1: 0x67, length 0x4a, unset (all-zero) handle, 32 / 2 / 0xfc / 0x03e8 / 10', () => {
    const qeBytes = CAPTURE_1.subarray(2);
    assert.equal(qeBytes.length, 74);
    const [qe, ...rest] = subobjects(qeBytes);
    assert.deepEqual(rest, []);
    assert.deepEqual(qe, {
      kind: 'qe',
      loose: false,
      keyHandle: Buffer.alloc(64),
      keyLength: 32,
      encryptionLayer: 2,
      refreshType: 0xfc,
      refreshValue: 0x03e8,
      algorithm: 10,
    });
    assert.deepEqual(encodeSubobject(qe!), qeBytes);
  });

  it('capture 2: IPv4 10.1.1.5/32, then the QE subobject with the handle set and refresh value 0xffe8', () => {
    const [ipv4, qe, ...rest] = subobjects(CAPTURE_2);
    assert.deepEqual(rest, []);
    assert.deepEqual(ipv4, { kind: 'ipv4', loose: false, address: '10.1.1.5', prefixLength: 32 });
    assert.deepEqual(qe, {
      kind: 'qe',
      loose: false,
      keyHandle: Buffer.from(HANDLE_2, 'hex'),
      keyLength: 32,
      encryptionLayer: 2,
      refreshType: 0xfc,
      refreshValue: 0xffe8,
      algorithm: 10,
    });
    assert.deepEqual(Buffer.concat([encodeSubobject(ipv4!), encodeSubobject(qe!)]), CAPTURE_2);
  });

  it('the printed annotations (RefType 0xfd, RefValue 60) are not what the bytes say', () => {
    for (const capture of [CAPTURE_1.subarray(2), CAPTURE_2.subarray(8)]) {
      const qe = subobjects(capture)[0]!;
      assert.ok(qe.kind === 'qe');
      assert.notEqual(qe.refreshType, 0xfd);
      assert.notEqual(qe.refreshValue, 60);
    }
  });

  it('as a PCEP ERO object: 86 bytes, not padded to a multiple of 4, and back byte for byte', () => {
    const object = Buffer.concat([hex('07 10 00 56'), CAPTURE_2]);
    const ero = readObject(new Reader(object));
    assert.equal(ero.kind, 'ero');
    assert.equal((ero as EroObject).subobjects.length, 2);
    assert.deepEqual(encodeObject(ero), object);
    assert.equal(object.length % 4, 2);
  });

  it('refuses a QE subobject of another length, and zero padding after the last subobject', () => {
    const short = Buffer.concat([hex('67 48'), CAPTURE_1.subarray(4, 76)]);
    assert.throws(
      () => subobjects(short),
      (e: PcepDecodeError) => e.code === 'BAD_LENGTH',
    );
    const padded = Buffer.concat([CAPTURE_2, Buffer.alloc(2)]);
    assert.throws(
      () => subobjects(padded),
      (e: PcepDecodeError) => e.code === 'BAD_LENGTH' && e.offset === 82,
    );
  });
});

describe('PCEP messages: RFC 5440 layouts', () => {
  it('Open as tshark shows it (keepalive 30, deadtimer 120, SID 1)', () => {
    const bytes = hex('20 01 00 0c 01 10 00 08 20 1e 78 01');
    const m = decodeMessage(bytes);
    assert.deepEqual(m, {
      type: 'open',
      open: {
        kind: 'open',
        p: false,
        i: false,
        flags: 0,
        keepalive: 30,
        deadTimer: 120,
        sessionId: 1,
        tlvs: Buffer.alloc(0),
      },
    });
    assert.deepEqual(encodeMessage(m), bytes);
  });

  it('Keepalive, Close (reason 3), PCErr (3/1 after an RP)', () => {
    for (const h of [
      '20 02 00 04',
      '20 07 00 0c 0f 10 00 08 00 00 00 03',
      '20 06 00 18 02 10 00 0c 00 00 00 00 00 00 00 07 0d 10 00 08 00 00 03 01',
    ]) {
      assert.deepEqual(encodeMessage(decodeMessage(hex(h))), hex(h));
    }
  });

  it('PCReq: RP (P, priority 1, ID 7), END-POINTS, METRIC (hop count), VENDOR-INFORMATION with the QKD parameters', () => {
    const bytes = hex(`20 03 00 38  02 12 00 0c 00 00 00 01 00 00 00 07  04 12 00 0c 7f 00 01 01 7f 00 01 05
      06 10 00 0c 00 00 00 03 40 a0 00 00  22 10 00 10 00 00 7e d9 00 20 02 fc 03 e8 00 0a`);
    const m = decodeMessage(bytes);
    assert.equal(m.type, 'pcreq');
    assert.deepEqual(m.type === 'pcreq' && m.objects.map((o) => o.kind), ['rp', 'end-points', 'metric', 'vendor-info']);
    assert.deepEqual(m.type === 'pcreq' && m.objects[2], {
      kind: 'metric',
      p: false,
      i: false,
      flags: 0,
      metricType: 3,
      value: 5,
    });
    assert.deepEqual(encodeMessage(m), bytes);
  });
});

describe('PCReq requests and PCRep objects', () => {
  const rp = { kind: 'rp' as const, p: true, i: false, requestId: 9, tlvs: Buffer.alloc(0) };
  const endPoints = { kind: 'end-points' as const, p: true, i: false, source: '127.0.1.1', destination: '127.0.1.5' };
  const capture1 = { keyLength: 32, encryptionLayer: 2, refreshType: 0xfc, refreshValue: 0x03e8, algorithm: 10 };

  it('takes the QKD parameters from the first VENDOR-INFORMATION object with enterprise number 32473', () => {
    const other = { ...qkdVendorInfo(capture1), enterpriseNumber: 9, p: false };
    const second = qkdVendorInfo({ ...capture1, keyLength: 64 });
    const requests = readPathRequests([{ ...rp, flags: 0 }, endPoints, other, qkdVendorInfo(capture1), second]);
    assert.ok(Array.isArray(requests));
    assert.deepEqual(requests[0]!.qkd, capture1);
  });

  it('the reply RP echoes priority, R and B, sets P, clears O; the ERO is hops then the QE subobject', () => {
    const flags = 0x20 | 0x10 | 0x08 | 5; // O, B, R, priority 5
    const requests = readPathRequests([{ ...rp, flags }, endPoints, qkdVendorInfo(capture1)]);
    assert.ok(Array.isArray(requests));
    const [replyRp, ero] = pathReplyObjects(requests[0]!, { hops: ['127.0.1.3'] });
    assert.deepEqual(replyRp, { ...rp, flags: 0x10 | 0x08 | 5 });
    const qeBytes = CAPTURE_1.subarray(2);
    assert.deepEqual(encodeObject(ero!), Buffer.concat([hex('07 10 00 56 01 08 7f 00 01 03 20 00'), qeBytes]));
  });
});

describe('docs/sdn.md', () => {
  it('lists every decode error code', () => {
    const docs = readFileSync(new URL('../../../docs/sdn.md', import.meta.url), 'utf8');
    for (const code of Object.keys(DECODE_ERROR_MEANING)) assert.match(docs, new RegExp(`\\| \`${code}\` +\\|`), code);
  });
});
