import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import { simulatedRateRows, tableIn } from '../../bench/figure-tables.js';

const read = (path: string) => readFileSync(new URL(`../../../${path}`, import.meta.url), 'utf8');

describe('the QKD link docs against their data', () => {
  it("docs/qkd-link.md's simulated key-rate table is the one docs/figures/simulated-key-rate.csv makes", () => {
    const expected = simulatedRateRows(read('docs/figures/simulated-key-rate.csv'));
    const inDoc = tableIn(read('docs/qkd-link.md'), expected[0]!);
    assert.ok(inDoc.length > 1, 'the table is in the doc, under its header');
    assert.deepEqual(inDoc, expected);
  });

  it('every simulated rate is positive and below the asymptotic model with the same detectors', () => {
    const rows = simulatedRateRows(read('docs/figures/simulated-key-rate.csv')).slice(1);
    assert.equal(rows.length, 10);
    for (const r of rows) {
      const ratio = Number(r[6]);
      assert.ok(ratio > 0 && ratio < 1, `${r[0]} km, ${r[1]} detectors: ratio ${ratio}`);
    }
  });
});
