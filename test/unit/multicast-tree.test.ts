import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { kmesIn, multicastTree, slavesIn } from '../../src/domain/multicast.js';
import { parseReservation } from '../../src/domain/peer-messages.js';

const slaves = (entries: Array<[string, string[]]>) => new Map(entries);

describe('multicast trees', () => {
  it('join paths that share a start into branches, every KME once, each with its own slaves', () => {
    const tree = multicastTree(
      'a',
      [
        ['a', 'b', 'c', 'd'],
        ['a', 'b'],
        ['a', 'e'],
      ],
      slaves([
        ['d', ['sd']],
        ['b', ['sb1', 'sb2']],
        ['e', ['se']],
      ]),
    );
    assert.deepEqual(
      tree.children.map((c) => c.kme),
      ['b', 'e'],
    );
    assert.deepEqual(kmesIn(tree), ['a', 'b', 'c', 'd', 'e']);
    assert.deepEqual(slavesIn(tree.children[0]!), ['sb1', 'sb2', 'sd'], 'b keeps its own and passes on d’s');
    assert.deepEqual(tree.children[0]!.children[0]!.slaves, [], 'c only passes the keys on');
  });

  it('graft a path at its last KME already in the tree, so no KME gets the same key twice', () => {
    // The second path reaches c by another way; the tree's way to c is kept, and d hangs below it.
    const tree = multicastTree(
      'a',
      [
        ['a', 'b', 'c'],
        ['a', 'e', 'c', 'd'],
      ],
      slaves([
        ['c', ['sc']],
        ['d', ['sd']],
      ]),
    );
    assert.deepEqual(kmesIn(tree), ['a', 'b', 'c', 'd']);
    assert.deepEqual(slavesIn(tree), ['sc', 'sd']);
    assert.throws(() => multicastTree('a', [['a', 'b']], slaves([['z', ['sz']]])), /no path reaches z/);
    assert.throws(() => multicastTree('a', [['b', 'c']], slaves([])), /a path from b/);
  });

  it('travel in a reservation, bounded in size, and refuse malformed branches', () => {
    const base = {
      link_ID: 'link-a-b',
      master_SAE_ID: 'sae-a1',
      slave_SAE_IDs: ['sae-b1'],
      keys: [{ key_ID: '00000000-0000-4000-8000-000000000001', size: 256, blocks: [2], mask: 'AAAA' }],
    };
    const tree = { slaves: ['sae-b1'], children: [{ kme: 'kme-c', slaves: [], children: [] }] };
    const parsed = parseReservation({ ...base, relay: { path: ['kme-a', 'kme-b'], tree, mac_blocks: [4], tag: 'x' } });
    assert.deepEqual(parsed.relay?.tree, tree);
    assert.equal(parsed.keys[0]!.mask, 'AAAA');
    const refused = (relay: unknown) => assert.throws(() => parseReservation({ ...base, relay }), /relay/);
    refused({ path: ['kme-a', 'kme-b'] }); // a two-KME path is only a multicast branch
    refused({ path: ['kme-a', 'kme-b'], tree: { slaves: [] } });
    refused({ path: ['kme-a', 'kme-b'], tree: { slaves: [], children: [{ slaves: [], children: [] }] } });
    refused({ path: ['kme-a', 'kme-b'], tree, tag: 7 });
    let deep: unknown = { slaves: [], children: [] };
    for (let i = 0; i < 70; i++) deep = { slaves: [], children: [{ kme: `kme-${i}`, ...(deep as object) }] };
    refused({ path: ['kme-a', 'kme-b'], tree: deep });
  });
});
