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
});
