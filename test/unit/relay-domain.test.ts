import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { poly1305 } from '@noble/ciphers/_poly1305.js';
import { parseReservation, parseReservationAnswer } from '../../src/domain/peer-messages.js';
import { relayTag, relayTagValid, xor } from '../../src/domain/relay-mac.js';
import { LinkStateDb, parseAdvert } from '../../src/domain/link-state.js';
import { shortestPath, type NetworkGraph } from '../../src/domain/routes.js';
import { builtInTopology } from '../../src/domain/topology.js';

const graph = (spec: string, untrusted: string[] = []): NetworkGraph => ({
  links: builtInTopology(spec).links,
  untrusted: new Set(untrusted),
});

describe('relay paths', () => {
  it('take the fewest hops, the same at every KME, and settle ties by KME IDs', () => {
    assert.deepEqual(shortestPath(graph('line:4'), 'kme-a', 'kme-d'), ['kme-a', 'kme-b', 'kme-c', 'kme-d']);
    assert.deepEqual(shortestPath(graph('line:4'), 'kme-d', 'kme-b'), ['kme-d', 'kme-c', 'kme-b']);
    // ring:4: a-b-c and a-d-c are equally short; b before d.
    assert.deepEqual(shortestPath(graph('ring:4'), 'kme-a', 'kme-c'), ['kme-a', 'kme-b', 'kme-c']);
    assert.deepEqual(shortestPath(graph('star:5'), 'kme-b', 'kme-e'), ['kme-b', 'kme-a', 'kme-e']);
    assert.deepEqual(shortestPath(graph('mesh:6'), 'kme-c', 'kme-f'), ['kme-c', 'kme-f']);
  });

  it('never pass through an untrusted site, which may still send and receive', () => {
    assert.deepEqual(shortestPath(graph('ring:5', ['kme-b']), 'kme-a', 'kme-c'), ['kme-a', 'kme-e', 'kme-d', 'kme-c']);
    assert.deepEqual(shortestPath(graph('ring:5', ['kme-b']), 'kme-b', 'kme-d'), ['kme-b', 'kme-c', 'kme-d']);
    assert.equal(shortestPath(graph('star:4', ['kme-a']), 'kme-b', 'kme-c'), null, 'the hub is the only way');
    assert.equal(shortestPath(graph('line:3'), 'kme-a', 'kme-z'), null);
  });

  it('follow link costs, avoiding links that cannot be used now', () => {
    const g = graph('ring:4');
    const avoidAB = (l: { id: string }) => (l.id === 'link-a-b' ? Infinity : 1);
    assert.deepEqual(shortestPath(g, 'kme-a', 'kme-c', avoidAB), ['kme-a', 'kme-d', 'kme-c']);
    const dearAD = (l: { id: string }) => (l.id === 'link-a-d' ? 5 : 1);
    assert.deepEqual(shortestPath(g, 'kme-a', 'kme-d', dearAD), ['kme-a', 'kme-b', 'kme-c', 'kme-d']);
  });
});

describe('the relay MAC', () => {
  it('is Poly1305 (the RFC 8439 §2.5.2 test vector) over each ID and mask with their lengths', () => {
    const key = Buffer.from('85d6be7857556d337f4452fe42d506a80103808afb0db2fd4abff6af4149f51b', 'hex');
    const message = Buffer.from('Cryptographic Forum Research Group');
    assert.equal(Buffer.from(poly1305(message, key)).toString('hex'), 'a8061dc1305136c6c22b8baf0c0127a9');
    const lengths = Buffer.from('0000000200000022', 'hex');
    const encoded = Buffer.concat([lengths, Buffer.from('k1'), message]);
    assert.deepEqual(relayTag(key, [{ keyId: 'k1', mask: message }]), Buffer.from(poly1305(encoded, key)));
  });

  it('fails on any change of an ID, a mask, their order, or the key', () => {
    const key = Buffer.alloc(32, 7);
    const masks = [
      { keyId: 'k1', mask: Buffer.from('0102', 'hex') },
      { keyId: 'k2', mask: Buffer.from('0304', 'hex') },
    ];
    const tag = relayTag(key, masks);
    assert.ok(relayTagValid(key, masks, tag));
    assert.ok(!relayTagValid(key, [masks[1]!, masks[0]!], tag));
    assert.ok(!relayTagValid(key, [{ ...masks[0]!, keyId: 'k9' }, masks[1]!], tag));
    assert.ok(!relayTagValid(key, [{ ...masks[0]!, mask: Buffer.from('0103', 'hex') }, masks[1]!], tag));
    assert.ok(!relayTagValid(Buffer.alloc(32, 8), masks, tag));
    assert.ok(!relayTagValid(key, masks, tag.subarray(0, 15)));
    assert.throws(() => relayTag(Buffer.alloc(16), masks), /32 bytes/);
  });

  it('xor is a one-time pad: applied twice it gives the key back', () => {
    const key = Buffer.from('00ff10', 'hex');
    const pad = Buffer.from('a5a5a5', 'hex');
    assert.deepEqual(xor(xor(key, pad), pad), key);
    assert.throws(() => xor(key, Buffer.alloc(2)), /lengths differ/);
  });
});

describe('relay messages between KMEs', () => {
  const base = {
    link_ID: 'link-a-b',
    master_SAE_ID: 'sae-a1',
    slave_SAE_IDs: ['sae-d1'],
    keys: [{ key_ID: '8c0b8f52-4a48-4d8e-9d43-2f53c6d7a001', size: 256, blocks: [4] }],
  };
  it('take a path of 3 or more distinct KMEs and optional MAC blocks', () => {
    const path = ['kme-a', 'kme-b', 'kme-c'];
    assert.deepEqual(parseReservation({ ...base, relay: { path, mac_blocks: [6] } }).relay, { path, mac_blocks: [6] });
    assert.deepEqual(parseReservation({ ...base, relay: { path } }).relay, { path });
    assert.equal(parseReservation(base).relay, undefined);
    const bad = (relay: unknown, message: RegExp) => assert.throws(() => parseReservation({ ...base, relay }), message);
    bad({ path: ['kme-a', 'kme-b'] }, /relay.path holds 3 to 32 KMEs/);
    bad({ path: ['kme-a', 'kme-b', 'kme-a'] }, /passes a KME twice/);
    bad({ path: 'kme-a' }, /relay.path must be an array/);
    bad({ path, mac_blocks: [] }, /mac_blocks must be a non-empty array/);
    bad({ path, mac_blocks: [-1] }, /mac_blocks must be a non-empty array/);
  });

  it('answers carry masks and a tag, or nothing', () => {
    const id = base.keys[0]!.key_ID;
    assert.deepEqual(parseReservationAnswer({ ok: true }), {});
    assert.deepEqual(parseReservationAnswer({ ok: true, masks: [{ key_ID: id, mask: 'AQI=' }], tag: 'x' }), {
      masks: [{ key_ID: id, mask: 'AQI=' }],
      tag: 'x',
    });
    assert.throws(() => parseReservationAnswer({ ok: true, masks: [] }), /needs masks and a tag/);
    assert.throws(() => parseReservationAnswer({ ok: true, masks: [{ key_ID: 'no', mask: '' }], tag: '' }));
  });
});

describe('the link-state database', () => {
  const link = { id: 'link-a-b', a: 'kme-a', b: 'kme-b' };
  const advert = (origin: string, seq: number, up: boolean, bits: number) => ({
    origin,
    seq,
    links: [{ id: 'link-a-b', peer: origin === 'kme-a' ? 'kme-b' : 'kme-a', up, available_bits: bits }],
  });

  it('keeps the newest advert of each origin, and says whether to flood it on', () => {
    const db = new LinkStateDb(1000);
    assert.equal(db.accept(advert('kme-a', 5, true, 100), 0), true);
    assert.equal(db.accept(advert('kme-a', 5, true, 999), 0), false, 'the same number again: old news');
    assert.equal(db.accept(advert('kme-a', 4, true, 999), 0), false);
    assert.equal(db.availableBits('kme-a', 'kme-b'), 100);
    assert.equal(db.accept(advert('kme-a', 6, true, 50), 10), true);
    assert.equal(db.availableBits('kme-a', 'kme-b'), 50);
  });

  it('costs a hop plus the share of the material a request uses; down, short or silent links cost Infinity', () => {
    const db = new LinkStateDb(1000);
    assert.equal(db.cost(256)(link, 'kme-a'), 1, 'nothing heard yet: one hop');
    db.accept(advert('kme-a', 1, true, 1024), 0);
    db.accept(advert('kme-b', 1, true, 4096), 0);
    assert.equal(db.cost(256)(link, 'kme-a'), 1.25);
    assert.equal(db.cost(256)(link, 'kme-b'), 1.0625);
    assert.equal(db.cost(2048)(link, 'kme-a'), Infinity, 'kme-a holds too little for this request');
    db.accept(advert('kme-b', 2, false, 4096), 0);
    assert.equal(db.cost(256)(link, 'kme-a'), Infinity, 'kme-b does not hear kme-a');
    db.accept(advert('kme-b', 3, true, 4096), 500);
    assert.deepEqual(db.expire(1200), ['kme-a'], 'kme-a fell silent');
    assert.equal(db.cost(256)(link, 'kme-b'), Infinity);
    assert.equal(db.heardFrom('kme-a', 1200), false);
    assert.equal(db.heardFrom('kme-b', 1200), true);
    db.accept(advert('kme-a', 9, true, 1024), 1300);
    assert.equal(db.cost(256)(link, 'kme-b'), 1.0625, 'back once it advertises again');
  });

  it('refuses adverts that are not well formed', () => {
    assert.throws(() => parseAdvert({ origin: 'kme-a', seq: -1, links: [] }), /seq/);
    assert.throws(() => parseAdvert({ origin: 'kme-a', seq: 1 }), /needs origin, seq and links/);
    const bad = { origin: 'kme-a', seq: 1, links: [{ id: 'l', peer: 'kme-b', up: 'yes', available_bits: 1 }] };
    assert.throws(() => parseAdvert(bad), /each link needs up/);
    assert.deepEqual(parseAdvert(advert('kme-a', 1, true, 8)), advert('kme-a', 1, true, 8));
  });
});
