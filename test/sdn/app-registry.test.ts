import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { APPS_FILE, AppRegistry } from '../../src/sdn/app-registry.js';

describe('the registry of applications written over the 015 interface', () => {
  const dir = mkdtempSync(join(tmpdir(), 'qks-sdn-apps-'));
  after(() => rmSync(dir, { recursive: true, force: true }));
  const id = '3f1c8a52-7d4e-4b6a-9c2d-0e5f6a7b8c9d';

  it('keeps applications in the data directory, a replaced one with its creation time', () => {
    const first = new AppRegistry(dir);
    assert.equal(first.put({ app_id: id, app_qos: { ttl: 5 } }, 1000), 'created');
    assert.equal(first.put({ app_id: id, app_qos: { ttl: 9 } }, 2000), 'replaced');
    const again = new AppRegistry(dir);
    assert.deepEqual(again.get(id), { config: { app_id: id, app_qos: { ttl: 9 } }, createdAt: 1000 });
    assert.equal(again.delete(id), true);
    assert.equal(again.delete(id), false);
    assert.deepEqual(new AppRegistry(dir).list(), []);
  });

  it('refuses to start from a file that holds no valid entries', () => {
    const file = join(dir, APPS_FILE);
    for (const text of ['{', '{"format":1,"apps":[{"config":{"app_id":"x"},"createdAt":1}]}', '[]']) {
      writeFileSync(file, text);
      assert.throws(() => new AppRegistry(dir), new RegExp(APPS_FILE), text);
      assert.equal(readFileSync(file, 'utf8'), text, 'left as it was');
    }
  });
});
