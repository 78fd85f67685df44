import { builtInTopology } from '../../src/domain/topology.js';
import { describeChaos } from '../integration/chaos-suite.js';

/**
 * The chaos test on star:4 (hub kme-a, leaves kme-b, kme-c, kme-d) with multicast across sites:
 * keys for slaves at several leaves, at the hub and at the master's own site, sent forward through
 * the hub, while any KME — the hub too — is killed with SIGKILL at random and restarted. The same
 * invariants are checked at the end, for every slave of every key.
 */
describeChaos({
  title: 'chaos: multicast across the sites of star:4 while any KME, the hub too, is killed at random and restarted',
  kmes: ['kme-a', 'kme-b', 'kme-c', 'kme-d'],
  pairs: [
    { master: 'sae-b1', slave: 'sae-c1', extra: ['sae-d1', 'sae-a1'] },
    { master: 'sae-a1', slave: 'sae-b1', extra: ['sae-c2', 'sae-a2'] },
    { master: 'sae-c2', slave: 'sae-d2', extra: ['sae-c1'] },
    { master: 'sae-d1', slave: 'sae-b2', extra: ['sae-c1', 'sae-d2', 'sae-a2'] },
    { master: 'sae-b2', slave: 'sae-d1' },
  ],
  sites: { source: 'simulated', rateBps: 30_000, topology: builtInTopology('star:4') },
  warmKeys: 40,
});
