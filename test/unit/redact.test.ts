import assert from 'node:assert/strict';
import { randomBytes, randomUUID } from 'node:crypto';
import { describe, it } from 'node:test';
import { assertSameKeys, fingerprint, redact, shown } from '../helpers/redact.js';

const wire = () => ({ key_ID: randomUUID(), key: randomBytes(32).toString('base64') });

/** Everything an assertion failure would print: message, actual and expected. */
function printed(fn: () => void): string {
  try {
    fn();
  } catch (err) {
    const e = err as assert.AssertionError;
    return `${e.message}\n${JSON.stringify(e.actual)}\n${JSON.stringify(e.expected)}`;
  }
  assert.fail('the assertion should have failed');
}

describe('test output never shows key bytes', () => {
  it('assertSameKeys passes equal keys, in either shape', () => {
    const a = [wire(), wire()];
    assertSameKeys(
      a,
      a.map((k) => ({ ...k })),
    );
    assertSameKeys(
      a,
      a.map((k) => ({ keyId: k.key_ID, key: Buffer.from(k.key, 'base64') })),
    );
  });

  it('assertSameKeys fails on other bytes, other IDs, other order or count, and prints IDs and hashes only', () => {
    const a = [wire(), wire()];
    const otherBytes = [a[0]!, { key_ID: a[1]!.key_ID, key: randomBytes(32).toString('base64') }];
    const cases = [otherBytes, [a[0]!, { ...a[1]!, key_ID: randomUUID() }], [a[1]!, a[0]!], [a[0]!]];
    for (const other of cases) {
      const out = printed(() => assertSameKeys(other, a, 'case'));
      for (const k of [...a, ...other]) {
        assert.ok(!out.includes(k.key), 'no base64 key bytes');
        assert.ok(!out.includes(Buffer.from(k.key, 'base64').toString('hex')), 'no hex key bytes');
      }
      assert.ok(out.includes(a[0]!.key_ID), 'key IDs are shown');
      assert.match(out, /<32 bytes #[0-9a-f]{8}>/);
    }
  });

  it('shown() and redact() replace key fields and buffers by fingerprints', () => {
    const keys = [wire(), wire()];
    const text = shown({ status: 200, body: { keys }, text: JSON.stringify({ keys }), headers: {} });
    assert.match(text, /^200 /);
    for (const k of keys) {
      assert.ok(!text.includes(k.key));
      assert.ok(text.includes(k.key_ID));
      assert.ok(text.includes(fingerprint(k.key)));
    }
    const raw = randomBytes(16);
    const out = JSON.stringify(redact({ nested: [{ secret: raw.toString('hex') }, raw] }));
    assert.ok(!out.includes(raw.toString('hex')) && !out.includes(raw.toString('base64')));
    assert.equal(shown({ status: 400, body: { message: 'bad' }, text: '', headers: {} }), '400 {"message":"bad"}');
  });
});
