import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';

const ROOT = fileURLToPath(new URL('../../../', import.meta.url));
const LEAKS = new URL('../helpers/log-leaks.js', import.meta.url).href;

/**
 * scripts/run-tests.sh (what `npm test` runs after the build): the key-material scan runs whatever
 * the tests did, and the exit status reports both. Each case runs the script on a one-test fixture
 * that records 500 keys and enough logs for the scan to count, with a run of its own
 * (QKS_TEST_LOG_ROOT), and prints one of its keys, which the scan must find in the run's output.
 */
describe('scripts/run-tests.sh: the scan always runs', () => {
  const dir = mkdtempSync(join(tmpdir(), 'qks-run-tests-'));
  after(() => rmSync(dir, { recursive: true, force: true }));

  const run = (name: string, opts: { fails: boolean; leaks: boolean }) => {
    const fixture = join(dir, `${name}.test.mjs`);
    writeFileSync(
      fixture,
      `import { randomBytes } from 'node:crypto';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { LOG_ROOT, recordDeliveredKeys } from ${JSON.stringify(LEAKS)};
test('a fixture', () => {
  const keys = Array.from({ length: 500 }, () => randomBytes(32).toString('base64'));
  recordDeliveredKeys(keys);
  mkdirSync(join(LOG_ROOT, 'logs', 'fixture'), { recursive: true });
  for (let f = 0; f < 10; f++) writeFileSync(join(LOG_ROOT, 'logs', 'fixture', f + '.log'), 'a quiet line\\n'.repeat(100));
  ${opts.leaks ? "console.log('oops ' + Buffer.from(keys[7], 'base64').toString('hex'));" : ''}
  ${opts.fails ? "throw new Error('this fixture fails');" : ''}
});
`,
    );
    const root = mkdtempSync(join(dir, `${name}-logs-`));
    // Without NODE_TEST_CONTEXT: the child's node --test is a run of its own, not nested in this one.
    const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => k !== 'NODE_TEST_CONTEXT'));
    const out = spawnSync('bash', ['scripts/run-tests.sh', fixture], {
      cwd: ROOT,
      encoding: 'utf8',
      env: { ...env, QKS_TEST_LOG_ROOT: root },
    });
    const summary = out.stdout.trim().split('\n').at(-1) ?? '';
    return { status: out.status, stdout: out.stdout, summary };
  };

  it('a failing test: the scan still runs, finds the key the test printed, and both fail the run', () => {
    const r = run('fails-and-leaks', { fails: true, leaks: true });
    assert.match(r.stdout, /== key material in logs/, 'the scan ran after the failure');
    assert.match(r.stdout, /test-output\.log:\d+: \d+ characters, key bytes at decoded offset/, 'and found the key');
    assert.equal(r.summary, 'tests: FAILED (exit 1); key-material scan: FAILED (exit 1)');
    assert.notEqual(r.status, 0);
  });

  it('a failing test and clean logs: the scan passes, the run fails', () => {
    const r = run('fails', { fails: true, leaks: false });
    assert.match(r.stdout, /scanned \d+ lines in \d+ files for 500 keys/);
    assert.equal(r.summary, 'tests: FAILED (exit 1); key-material scan: passed');
    assert.notEqual(r.status, 0);
  });

  it('passing tests and a key in the output: the run fails on the scan alone', () => {
    const r = run('leaks', { fails: false, leaks: true });
    assert.equal(r.summary, 'tests: passed; key-material scan: FAILED (exit 1)');
    assert.notEqual(r.status, 0);
  });

  it('passing tests and clean logs: the run passes', () => {
    const r = run('clean', { fails: false, leaks: false });
    assert.equal(r.summary, 'tests: passed; key-material scan: passed');
    assert.equal(r.status, 0);
  });
});
