import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { loadTopology, topologyFromObject, topologyToObject } from '../../src/config/topology-file.js';
import { builtInTopology, neighbours, topologyProblems, type Topology } from '../../src/domain/topology.js';

const pairs = (t: Topology) => t.links.map((l) => `${l.a.slice(4)}${l.b.slice(4)}`);

describe('built-in topologies', () => {
  it('line, ring, star and mesh join the sites as their names say', () => {
    assert.deepEqual(pairs(builtInTopology('line:4')), ['ab', 'bc', 'cd']);
    assert.deepEqual(pairs(builtInTopology('ring:5')), ['ab', 'bc', 'cd', 'de', 'ae']);
    assert.deepEqual(pairs(builtInTopology('star:5')), ['ab', 'ac', 'ad', 'ae']);
    assert.equal(builtInTopology('mesh:12').links.length, 66);
    assert.deepEqual(neighbours(builtInTopology('star:5'), 'kme-a'), ['kme-b', 'kme-c', 'kme-d', 'kme-e']);
    assert.deepEqual(neighbours(builtInTopology('ring:5'), 'kme-a'), ['kme-b', 'kme-e']);
  });

  it('numbers node addresses 127.0.1.N in site order and gives each site two SAEs', () => {
    const t = builtInTopology('ring:3');
    assert.deepEqual(
      t.sites.map((s) => [s.kme, s.nodeAddress, s.saes.join(' '), s.trusted]),
      [
        ['kme-a', '127.0.1.1', 'sae-a1 sae-a2', true],
        ['kme-b', '127.0.1.2', 'sae-b1 sae-b2', true],
        ['kme-c', '127.0.1.3', 'sae-c1 sae-c2', true],
      ],
    );
    assert.deepEqual(
      t.links.map((l) => l.id),
      ['link-a-b', 'link-b-c', 'link-a-c'],
    );
    assert.deepEqual(topologyProblems(builtInTopology('mesh:26')), []);
  });

  it('refuses unknown shapes and sizes they cannot have', () => {
    assert.throws(
      () => builtInTopology('tree:4'),
      /"tree:4" is not a shape: line:N, ring:N, star:N, mesh:N, or a file/,
    );
    assert.throws(() => builtInTopology('ring:2'), /ring:N takes 3 to 26 sites, not 2/);
    assert.throws(() => builtInTopology('line:27'), /line:N takes 2 to 26 sites, not 27/);
  });
});

describe('topology files', () => {
  const dir = mkdtempSync(join(tmpdir(), 'qks-topology-'));
  after(() => rmSync(dir, { recursive: true, force: true }));

  it('reads JSON and YAML alike, filling node addresses, SAEs, trust and link IDs', () => {
    const yaml = join(dir, 'net.yaml');
    writeFileSync(
      yaml,
      [
        'sites:',
        '  - kme: paris',
        '    node_address: 10.0.0.1',
        '    saes: [sae-p]',
        '  - kme: lyon',
        '    trusted: false',
        '  - kme: nice',
        'links:',
        '  - { a: paris, b: lyon, source: { type: qkd, distance_km: 60 } }',
        '  - { id: south, a: lyon, b: nice, source: { type: simulated, rate_bps: 50000 } }',
        '',
      ].join('\n'),
    );
    const t = loadTopology(yaml);
    assert.deepEqual(
      t.sites.map((s) => [s.kme, s.nodeAddress, s.saes.join(' '), s.trusted]),
      [
        ['paris', '10.0.0.1', 'sae-p', true],
        ['lyon', '127.0.1.2', 'sae-lyon1 sae-lyon2', false],
        ['nice', '127.0.1.3', 'sae-nice1 sae-nice2', true],
      ],
    );
    assert.deepEqual(t.links, [
      { id: 'link-paris-lyon', a: 'paris', b: 'lyon', source: { type: 'qkd', distance_km: 60 } },
      { id: 'south', a: 'lyon', b: 'nice', source: { type: 'simulated', rate_bps: 50000 } },
    ]);
    const json = join(dir, 'net.json');
    writeFileSync(json, JSON.stringify(topologyToObject(t)));
    assert.deepEqual(loadTopology(json), t, 'the written form reads back the same');
  });

  it('says what is wrong, every problem at once', () => {
    const bad = {
      sites: [{ kme: 'a', node_address: '300.1.1.1' }, { kme: 'b' }, { kme: 'b' }, { kme: 'c', colour: 'red' }],
      links: [
        { a: 'a', b: 'x' },
        { a: 'a', b: 'a', source: { type: 'laser' } },
      ],
    };
    assert.throws(
      () => topologyFromObject(bad, 2, 'net.json'),
      (err: Error) => {
        assert.match(err.message, /^invalid topology net.json:\n/);
        assert.match(err.message, /sites\[0\]\.node_address must be an IPv4 address, e.g. 127.0.1.1/);
        assert.match(err.message, /unknown key "colour" in sites\[3\]/);
        assert.match(err.message, /links\[1\]\.source\.type must be one of qkd, simulated/);
        return true;
      },
    );
    const unsound = {
      sites: [{ kme: 'a' }, { kme: 'b' }, { kme: 'b' }, { kme: 'c' }, { kme: 'd' }],
      links: [
        { a: 'a', b: 'x' },
        { a: 'a', b: 'a' },
        { a: 'a', b: 'b' },
        { id: 'again', a: 'b', b: 'a' },
      ],
    };
    assert.throws(
      () => topologyFromObject(unsound, 2, 'net.json'),
      (err: Error) => {
        assert.equal(
          err.message,
          [
            'invalid topology net.json:',
            '  site b appears twice',
            '  SAE sae-b1 appears twice',
            '  SAE sae-b2 appears twice',
            '  link link-a-x: no site x',
            '  link link-a-a joins a to itself',
            '  link again: b and a are joined twice',
          ].join('\n'),
        );
        return true;
      },
    );
    const apart = {
      sites: [{ kme: 'a' }, { kme: 'b' }, { kme: 'c' }, { kme: 'd' }],
      links: [
        { a: 'a', b: 'b' },
        { a: 'c', b: 'd' },
      ],
    };
    assert.throws(() => topologyFromObject(apart), /invalid topology: no path of links from a to c, d$/);
  });

  it('names a missing file and a file that is neither JSON nor YAML', () => {
    assert.throws(
      () => loadTopology(join(dir, 'absent.json')),
      /--topology .*absent.json: no such file \(a file, or a shape: line:N, ring:N, star:N or mesh:N\)/,
    );
    writeFileSync(join(dir, 'broken.yaml'), 'sites: [a\nlinks: }');
    assert.throws(() => loadTopology(join(dir, 'broken.yaml')), /broken.yaml is neither JSON nor YAML: /);
  });
});
