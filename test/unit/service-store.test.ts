import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { serviceRequestProblem, ServiceStore, type ServiceRequest } from '../../src/sdn/controller/services.js';

const request: ServiceRequest = {
  source: 'sae-a1',
  destination: 'sae-d1',
  key_length: 32,
  encryption_layer: 4,
  refresh: { type: 'traffic', value: 1_000_000 },
  algorithm: 10,
};

describe('the controller’s services', () => {
  const dir = mkdtempSync(join(tmpdir(), 'qks-services-'));
  after(() => rmSync(dir, { recursive: true, force: true }));

  it('are kept on disk: a new controller finds them, handle and all; the first handle stays', () => {
    const file = join(dir, 'services.json');
    const store = new ServiceStore(file);
    const s = store.add(request, ['kme-a', 'kme-b', 'kme-d'], 'virt-1');
    store.setHandle(s.id, 'key-1');
    store.setHandle(s.id, 'key-2');
    const again = new ServiceStore(file);
    assert.deepEqual(again.get(s.id), { ...s, handle: 'key-1' });
    assert.equal(again.remove(s.id)?.virtual_link, 'virt-1');
    assert.deepEqual(new ServiceStore(file).list(), []);
  });

  it('take the slides’ parameters and refuse anything else, naming it', () => {
    assert.equal(serviceRequestProblem(request), null);
    assert.match(serviceRequestProblem({ ...request, encryption_layer: 2 })!, /encryption_layer/);
    assert.match(serviceRequestProblem({ ...request, key_length: 8 })!, /key_length/);
    assert.match(serviceRequestProblem({ ...request, refresh: { type: 'volume', value: 1 } })!, /refresh\/type/);
    assert.match(serviceRequestProblem({ ...request, destination: 'sae-a1' })!, /two SAEs/);
    assert.match(serviceRequestProblem({ ...request, extra: 1 })!, /additional properties/);
  });
});
