import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { it } from 'node:test';
import { ERROR_TABLE } from '../../src/domain/errors.js';

it('docs/errors.md lists exactly the codes of the error table, with their statuses and texts', () => {
  const doc = readFileSync(new URL('../../../docs/errors.md', import.meta.url), 'utf8');
  const rows = [...doc.matchAll(/^\|\s*`([A-Z0-9_]+)`\s*\|\s*(\d{3})\s*\|\s*(.*?)\s*\|$/gm)].map((m) => [
    m[1],
    Number(m[2]),
    m[3],
  ]);
  const expected = Object.entries(ERROR_TABLE).map(([code, e]) => [code, e.status, e.message]);
  assert.deepEqual(rows, expected);
});
