import assert from 'node:assert/strict';
import { existsSync, readdirSync, rmSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { pino } from 'pino';
import type { Deployment } from '../../src/cli/init.js';
import { portAnswers } from '../../src/cli/ports.js';
import { loadConfig } from '../../src/kme/config.js';
import { LOCK_FILE } from '../../src/kme/data-dir-lock.js';
import { startKme } from '../../src/kme/kme.js';
import { PortUnavailable } from '../../src/kme/listen.js';
import { createDeployment } from '../helpers/two-kmes.js';

const occupy = (port: number) =>
  new Promise<Server>((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(port, '127.0.0.1', () => resolve(s));
  });

/**
 * A KME whose second listener cannot open (its port taken by a real socket) fails to start and
 * leaves nothing half-started in the process: the first listener closed again, the store closed,
 * the data_dir's lock released; the same process can then start it.
 */
describe('a KME that fails to start part-way', () => {
  let deployment: Deployment;
  before(async () => {
    deployment = await createDeployment();
  });
  after(() => rmSync(deployment.dir, { recursive: true, force: true }));

  it('undoes everything it had started, and starts cleanly once the port is free', async () => {
    const { file } = deployment.configs.find((c) => c.kme === 'kme-a')!;
    const config = loadConfig(file);
    const log = pino({ level: 'silent' });
    const squatter = await occupy(config.kme_api.port);
    try {
      await assert.rejects(startKme(config, log), (err: Error) => {
        assert.ok(err instanceof PortUnavailable);
        assert.equal(
          err.message,
          `${file}: kme_api.port ${config.kme_api.port} on 127.0.0.1 is already in use by another process; choose another port`,
        );
        return true;
      });
    } finally {
      await new Promise((r) => squatter.close(r));
    }
    assert.equal(await portAnswers(config.sae_api.port), false, 'the SAE API, opened first, is closed again');
    // SQLite removes the WAL and shared-memory files when the last connection to keys.db closes.
    assert.deepEqual(readdirSync(config.data_dir).sort(), ['keys.db', 'master.key']);
    assert.equal(existsSync(join(config.data_dir, LOCK_FILE)), false);

    const kme = await startKme(config, log);
    assert.equal(await portAnswers(config.kme_api.port), true);
    assert.equal(existsSync(join(config.data_dir, LOCK_FILE)), true);
    await kme.stop();
    assert.equal(existsSync(join(config.data_dir, LOCK_FILE)), false);
    assert.equal(await portAnswers(config.sae_api.port), false);
  });
});
