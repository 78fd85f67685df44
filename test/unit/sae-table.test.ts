import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { planSlaves, SaeTable } from '../../src/domain/sae-directory.js';

describe('SaeTable: the SAE list of a running KME', () => {
  it('is replaced whole, and says which SAEs were added, removed or moved', () => {
    const table = new SaeTable([
      { id: 'sae-a1', kme: 'kme-a' },
      { id: 'sae-b1', kme: 'kme-b' },
      { id: 'sae-b2', kme: 'kme-b' },
    ]);
    assert.deepEqual(table.servedBy('kme-b'), ['sae-b1', 'sae-b2']);
    assert.throws(() => planSlaves(table, 'kme-a', 'sae-a1', ['sae-a3']), /unknown SAE ID: sae-a3/);
    const changes = table.replace([
      { id: 'sae-a1', kme: 'kme-a' },
      { id: 'sae-a3', kme: 'kme-a' },
      { id: 'sae-b2', kme: 'kme-a' },
    ]);
    assert.deepEqual(changes, { added: ['sae-a3'], removed: ['sae-b1'], moved: ['sae-b2'] });
    assert.deepEqual(planSlaves(table, 'kme-a', 'sae-a1', ['sae-a3']).localSlaves, ['sae-a3']);
    assert.equal(table.kmeOf.get('sae-b1'), undefined);
    assert.deepEqual(table.replace([...table.kmeOf].map(([id, kme]) => ({ id, kme }))), {
      added: [],
      removed: [],
      moved: [],
    });
  });
});
