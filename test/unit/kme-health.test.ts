import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { kmeHealth, storeDown } from '../../src/domain/kme-health.js';

const link = (health: 'healthy' | 'starting' | 'degraded' | 'down') => ({
  link_ID: `l-${health}`,
  health,
  health_reasons: health === 'down' ? ['no key made recently'] : [],
});
const peer = (lastOkAt: number | null, lastFailureAt: number | null) => ({
  peer: 'kme-b',
  lastOkAt,
  lastFailureAt,
  lastFailure: lastFailureAt ? 'unreachable' : null,
});

describe('kmeHealth', () => {
  it('ok, degraded or down from the checks', () => {
    assert.equal(kmeHealth({ links: [link('healthy')], peers: [peer(null, null)] }).status, 'ok');
    assert.equal(kmeHealth({ links: [link('starting')], peers: [peer(2, 1)] }).status, 'ok');
    assert.equal(kmeHealth({ links: [link('healthy')], peers: [peer(1, 2)] }).status, 'degraded');
    assert.equal(kmeHealth({ links: [link('healthy'), link('down')], peers: [] }).status, 'degraded');
    assert.equal(kmeHealth({ links: [link('down')], peers: [] }).status, 'down', 'no link makes key');
    const expired = { links: [link('healthy')], peers: [], crls: [{ api: 'sae_api', state: 'expired' }] };
    assert.equal(kmeHealth(expired).status, 'down', 'every handshake fails');
    const expiring = { links: [link('healthy')], peers: [], crls: [{ api: 'sae_api', state: 'expiring' }] };
    assert.equal(kmeHealth(expiring).status, 'ok');
    assert.deepEqual(storeDown('SQLITE_CORRUPT'), {
      status: 'down',
      checks: [{ name: 'store', ok: false, detail: 'SQLITE_CORRUPT' }],
    });
  });
});
