import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import { archivedLogs, findLeaks, LOG_ROOT, readLedger } from '../helpers/log-leaks.js';

/**
 * Runs after the whole suite (scripts/test.sh runs test/final/ last): every log line the suite's
 * KMEs, demos and agents wrote, and the suite's own output, against every key the tests received.
 */
describe('no key material in any log of the test suite', () => {
  it('scans every archived log line for every delivered key', () => {
    assert.ok(process.env['QKS_TEST_LOG_ROOT'], 'run through scripts/test.sh (npm test), which sets QKS_TEST_LOG_ROOT');
    const ledger = readLedger();
    const files = archivedLogs();
    // A scan over nothing would pass for the wrong reason: the suite delivers thousands of keys
    // and leaves dozens of logs.
    assert.ok(ledger.keys >= 500, `only ${ledger.keys} keys recorded in ${LOG_ROOT}`);
    assert.ok(files.length >= 10, `only ${files.length} log files archived in ${LOG_ROOT}`);
    let lines = 0;
    const leaks: string[] = [];
    for (const file of files) {
      const text = readFileSync(file, 'latin1');
      lines += text.split('\n').length;
      for (const leak of findLeaks(text, ledger)) leaks.push(`${file}:${leak.line}: ${leak.excerpt}`);
    }
    console.log(`scanned ${lines} lines in ${files.length} files for ${ledger.keys} keys`);
    assert.ok(lines >= 1000, `only ${lines} log lines`);
    assert.deepEqual(leaks, []);
  });
});
