import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { computePaths, type PceLink, type PceNetwork } from '../../src/domain/pce.js';
import { builtInTopology } from '../../src/domain/topology.js';

const link = (a: string, b: string, bits = 1e6, more: Partial<PceLink> = {}): PceLink => ({
  id: `${a}-${b}`,
  a,
  b,
  up: true,
  rateBps: 10_000,
  availableBits: { [a]: bits, [b]: bits },
  ...more,
});
const net = (links: PceLink[], untrusted: string[] = []): PceNetwork => {
  const ids = [...new Set(links.flatMap((l) => [l.a, l.b]))];
  return { nodes: ids.map((id) => ({ id, trusted: !untrusted.includes(id) })), links };
};
const nodesOf = (paths: ReturnType<typeof computePaths>) => paths.map((p) => p.nodes.join(' '));

describe('path computation (PCE)', () => {
  // a-b-c-d (rich, three hops) beside a-e-d (poor, two hops).
  const square = () =>
    net([link('a', 'b'), link('b', 'c'), link('c', 'd'), link('a', 'e', 3000), link('e', 'd', 3000)]);

  it('weighs key availability against hop count, as the KMEs do', () => {
    assert.deepEqual(nodesOf(computePaths(square(), { source: 'a', destination: 'd', bits: 256 })), ['a e d']);
    // 2048 bits would take most of the poor side: the long rich side is cheaper.
    assert.deepEqual(nodesOf(computePaths(square(), { source: 'a', destination: 'd', bits: 2048 })), ['a b c d']);
    // More than the poor side holds: it is not a path at all.
    assert.deepEqual(nodesOf(computePaths(square(), { source: 'a', destination: 'd', bits: 4000 })), ['a b c d']);
  });

  it('keeps to a hop bound exactly, taking a dearer path that fits', () => {
    const bounded = computePaths(square(), { source: 'a', destination: 'd', bits: 2048, maxHops: 2 });
    assert.deepEqual(nodesOf(bounded), ['a e d']);
    assert.deepEqual(computePaths(square(), { source: 'a', destination: 'd', bits: 256, maxHops: 1 }), []);
  });

  it('honours a minimum key rate and a minimum of material, and avoids links that are down', () => {
    const slow = net([link('a', 'b', 1e6, { rateBps: 100 }), link('b', 'd'), link('a', 'c'), link('c', 'd')]);
    assert.deepEqual(nodesOf(computePaths(slow, { source: 'a', destination: 'd', bits: 256 })), ['a b d']);
    assert.deepEqual(nodesOf(computePaths(slow, { source: 'a', destination: 'd', bits: 256, minRateBps: 1000 })), [
      'a c d',
    ]);
    assert.deepEqual(
      nodesOf(computePaths(square(), { source: 'a', destination: 'd', bits: 256, minAvailableBits: 5000 })),
      ['a b c d'],
    );
    const down = net([link('a', 'b', 1e6, { up: false }), link('b', 'd'), link('a', 'c'), link('c', 'd')]);
    assert.deepEqual(nodesOf(computePaths(down, { source: 'a', destination: 'd', bits: 256 })), ['a c d']);
  });

  it('counts what the sending end of each link holds', () => {
    const oneSided = net([link('a', 'b', 1e6, { availableBits: { a: 0, b: 1e6 } }), link('a', 'c'), link('c', 'b')]);
    assert.deepEqual(nodesOf(computePaths(oneSided, { source: 'a', destination: 'b', bits: 256 })), ['a c b']);
    assert.deepEqual(nodesOf(computePaths(oneSided, { source: 'b', destination: 'a', bits: 256 })), ['b a']);
  });

  it('passes only through trusted nodes, which may still be ends', () => {
    const ring = builtInTopology('ring:5');
    const links = ring.links.map((l) => link(l.a, l.b));
    const untrusted = net(links, ['kme-b']);
    assert.deepEqual(nodesOf(computePaths(untrusted, { source: 'kme-a', destination: 'kme-c', bits: 256 })), [
      'kme-a kme-e kme-d kme-c',
    ]);
    assert.deepEqual(nodesOf(computePaths(untrusted, { source: 'kme-b', destination: 'kme-d', bits: 256 })), [
      'kme-b kme-c kme-d',
    ]);
  });

  it('finds disjoint paths for multipath, and no more than exist', () => {
    const mesh = builtInTopology('mesh:5');
    const full = net(mesh.links.map((l) => link(l.a, l.b)));
    const four = computePaths(full, { source: 'kme-a', destination: 'kme-e', bits: 256, paths: 4 });
    assert.equal(four.length, 4);
    const interior = four.flatMap((p) => p.nodes.slice(1, -1));
    assert.equal(new Set(interior).size, interior.length, 'no interior node shared');
    const links = four.flatMap((p) => p.links);
    assert.equal(new Set(links).size, links.length, 'no link shared');
    assert.equal(computePaths(full, { source: 'kme-a', destination: 'kme-e', bits: 256, paths: 9 }).length, 4);
    assert.equal(computePaths(square(), { source: 'a', destination: 'd', bits: 256, paths: 2 }).length, 2);
    assert.deepEqual(computePaths(square(), { source: 'a', destination: 'zz', bits: 256 }), []);
  });
});
