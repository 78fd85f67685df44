import { builtInTopology } from '../../src/domain/topology.js';
import { describeChaos } from '../integration/chaos-suite.js';

/**
 * The chaos test on line:3 (kme-a - kme-b - kme-c): keys relayed through kme-b both ways, direct
 * ones on each link, and local ones, while any KME — the trusted node in the middle too — is killed
 * with SIGKILL at random and restarted. The same invariants are checked at the end.
 */
describeChaos({
  title: 'chaos: relayed keys while any KME of line:3, the relay too, is killed at random and restarted',
  kmes: ['kme-a', 'kme-b', 'kme-c'],
  pairs: [
    { master: 'sae-a1', slave: 'sae-c1' },
    { master: 'sae-c2', slave: 'sae-a2' },
    { master: 'sae-a2', slave: 'sae-c2' },
    { master: 'sae-c1', slave: 'sae-a1' },
    { master: 'sae-a1', slave: 'sae-b1' },
    { master: 'sae-b2', slave: 'sae-c1' },
    { master: 'sae-c1', slave: 'sae-c2' },
  ],
  sites: { source: 'simulated', rateBps: 30_000, topology: builtInTopology('line:3') },
  warmKeys: 40,
});
