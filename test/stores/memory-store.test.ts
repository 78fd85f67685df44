import { MemoryKeyStore } from '../../src/stores/memory-store.js';
import { describeKeyStoreConformance } from './key-store-conformance.js';

describeKeyStoreConformance('memory', async () => {
  const store = new MemoryKeyStore();
  return { store, cleanup: () => store.close() };
});
