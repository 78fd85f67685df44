import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { freePorts } from '../../src/cli/ports.js';
import { StunnelManager } from '../../src/integrations/stunnel/stunnel-manager.js';
import { KeyRing } from '../../src/sae/key-ring.js';
import { eventually } from '../helpers/two-kmes.js';

/**
 * The back-off of stunnel's supervision (issue 17): a stunnel that keeps dying at once is started
 * again after a wait that doubles each time, not in a tight loop; stop() ends the cycle.
 * (A real stunnel killed and restarted: stunnel-service.test.ts.)
 */
describe('stunnel supervision: restarts with back-off', () => {
  const dir = mkdtempSync(join(tmpdir(), 'qks-stunnel-backoff-'));
  after(() => rmSync(dir, { recursive: true, force: true }));

  it('a stunnel that exits at once is started again after 20, 40, 80, 160… ms, and no more once stopped', async () => {
    const [accept] = await freePorts(1);
    // `false` stands in for a stunnel that fails as soon as it starts (a bad build, a missing library).
    const manager = new StunnelManager({
      role: 'server',
      dir,
      accept: { host: '127.0.0.1', port: accept! },
      connect: { host: '127.0.0.1', port: 9 },
      keys: new KeyRing(),
      mode: 'psk_ke',
      binary: 'false',
      restartDelayMs: 20,
    });
    const waits: number[] = [];
    const exits: Array<number | null> = [];
    manager.on('restarting', ({ inMs }) => waits.push(inMs));
    manager.on('exited', ({ code }) => exits.push(code));
    await manager.start();
    await eventually(() => waits.length >= 5, 10_000, 'five restarts');
    await manager.stop();
    assert.deepEqual(waits.slice(0, 5), [20, 40, 80, 160, 320], 'each wait twice the one before');
    assert.ok(
      exits.slice(0, 5).every((c) => c === 1),
      `each start reported with its exit code: ${exits.join()}`,
    );
    const seen = waits.length;
    await new Promise((r) => setTimeout(r, 1000));
    assert.equal(waits.length, seen, 'stopped: no restart after stop()');
    assert.equal(existsSync(join(dir, 'psk-secrets.txt')), false, 'and its secrets file removed');
  });
});
