import { describeLeaseConformance } from './lease-conformance.js';
import { MemoryLeases } from '../../src/stores/leases.js';

describeLeaseConformance('memory', () => {
  let now = 1_000_000;
  return Promise.resolve({
    leases: new MemoryLeases(() => now),
    pass: (ms: number) => {
      now += ms;
      return Promise.resolve();
    },
    cleanup: () => Promise.resolve(),
  });
});
