import { describeEtsiKeyDelivery } from '../api/etsi-keys-suite.js';
import { builtInTopology } from '../../src/domain/topology.js';

// The same ETSI 014 tests as over a direct link, between SAEs three hops apart.
describeEtsiKeyDelivery({
  title: 'relayed three hops (line:4, kme-a to kme-d)',
  topology: builtInTopology('line:4'),
  targetKme: 'kme-d',
  slave: 'sae-d1',
  slave2: 'sae-d2',
  extension: { qks_relay_path: ['kme-a', 'kme-b', 'kme-c', 'kme-d'] },
  firstHopSlave: 'sae-b1',
  blocksPerRequest: 1,
});
