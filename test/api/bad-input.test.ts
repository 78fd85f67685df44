import assert from 'node:assert/strict';
import fc from 'fast-check';
import { after, before, describe, it } from 'node:test';
import { eventually, startSites, type TwoSites } from '../helpers/two-kmes.js';
import type { TestClient } from '../helpers/sae-client.js';
import { assertEtsiShape, type Status } from './etsi-helpers.js';
import { shown } from '../helpers/redact.js';

/**
 * Whatever a client sends, the answer is one of the standard's, with a message, and nothing
 * changes: no key is handed out and none is left waiting, at either KME.
 */
describe('bad input changes nothing', () => {
  let sites: TwoSites;
  let a1: TestClient;
  // What a request could change: keys handed out, and keys left waiting for slaves, at both KMEs.
  const snapshot = async () =>
    Promise.all(
      ['sae-a1', 'sae-b1'].map(async (sae) => {
        const info = (await sites.sae(sae).get('/api/v1/information/info')).body as Record<string, unknown>;
        return { waiting: info['keys_waiting_for_slaves'], delivered: info['keys_delivered'] };
      }),
    );

  before(async () => {
    sites = await startSites();
    a1 = sites.sae('sae-a1');
    await eventually(async () => ((await a1.get('/api/v1/keys/sae-b1/status')).body as Status).stored_key_count > 200);
  });
  after(() => sites.stop());

  it('random JSON bodies for enc_keys and dec_keys', async () => {
    const before = await snapshot();
    // Values that are almost right are the interesting ones.
    const number = fc.oneof(
      fc.integer(),
      fc.double(),
      fc.constantFrom(0, -1, 129, Infinity, 2 ** 53, '1', null, [], {}),
    );
    const body = fc.oneof(
      fc
        .record(
          { number, size: fc.oneof(fc.integer({ min: -10, max: 10_000 }), fc.string()) },
          { requiredKeys: ['number'] },
        )
        .filter((b) => !(Number.isSafeInteger(b.number) && (b.number as number) >= 1 && (b.number as number) <= 128)),
      fc.record({
        additional_slave_SAE_IDs: fc.oneof(fc.string(), fc.array(fc.string(), { minLength: 1, maxLength: 12 })),
      }),
      fc
        .record({ extension_mandatory: fc.oneof(fc.anything(), fc.array(fc.dictionary(fc.string(), fc.anything()))) })
        .filter(
          // An array of empty objects is a valid (empty) extension list; anything else is not.
          (b) =>
            b.extension_mandatory !== undefined &&
            (!Array.isArray(b.extension_mandatory) ||
              b.extension_mandatory.some(
                (o) => typeof o !== 'object' || o === null || Array.isArray(o) || Object.keys(o).length > 0,
              )),
        ),
      fc.record({ key_IDs: fc.anything() }).filter((b) => b.key_IDs !== undefined),
      fc.anything().filter((v) => typeof v !== 'object' || v === null || Array.isArray(v)),
    );
    await fc.assert(
      fc.asyncProperty(body, fc.constantFrom('enc_keys', 'dec_keys'), async (b, call) => {
        const res = await a1.post(`/api/v1/keys/sae-b1/${call}`, JSON.stringify(b) ?? 'null', {
          'content-type': 'application/json',
        });
        assertEtsiShape(res);
        assert.equal(res.status, 400, `${call} ${JSON.stringify(b)} → ${shown(res)}`);
      }),
      { numRuns: 200 },
    );
    assert.deepEqual(await snapshot(), before, 'no key was taken or left waiting');
  });

  it('refused requests take nothing: malformed text, odd paths, repeated parameters', async () => {
    const raw = fc.oneof(
      fc.string(),
      fc.constantFrom(
        '{',
        '{"number":1',
        '[1,2',
        '{"number":1}{}',
        '\u0000',
        '{"__proto__":{"x":1}}',
        '{"number":1e309}',
        '{"size":-0.0}',
      ),
    );
    await fc.assert(
      fc.asyncProperty(raw, async (text) => {
        let valid: boolean;
        try {
          const parsed = text.trim() === '' ? {} : JSON.parse(text);
          valid =
            typeof parsed === 'object' && parsed !== null && !Array.isArray(parsed) && Object.keys(parsed).length === 0;
        } catch {
          valid = false;
        }
        if (valid) return; // an empty request is a valid request for one key
        const before = await snapshot();
        const res = await a1.post('/api/v1/keys/sae-b1/enc_keys', text, { 'content-type': 'application/json' });
        assertEtsiShape(res);
        assert.equal(res.status, 400, `${JSON.stringify(text)} → ${shown(res)}`);
        assert.deepEqual(await snapshot(), before);
      }),
      { numRuns: 100 },
    );
    const before = await snapshot();
    const segment = fc.oneof(
      fc.string({ minLength: 1, maxLength: 80 }).map(encodeURIComponent),
      fc.constantFrom('%00', '..', '%2e%2e', 'sae-b1%2F..', '%ZZ', 'x'.repeat(250), '%E2%80%AE', 'sae b1', '*'),
    );
    await fc.assert(
      fc.asyncProperty(segment, fc.constantFrom('status', 'enc_keys', 'dec_keys?key_ID=x'), async (seg, call) => {
        const res = await a1.get(`/api/v1/keys/${seg}/${call}`);
        assertEtsiShape(res);
        let id = seg;
        try {
          id = decodeURIComponent(seg);
        } catch {
          // not decodable: certainly no SAE ID
        }
        if (!['sae-a2', 'sae-b1', 'sae-b2'].includes(id)) assert.equal(res.status, 400, `${seg}/${call}`);
      }),
      { numRuns: 150 },
    );
    for (const query of [
      'number=1&number=2',
      'size=256&size=512',
      'number=1e3',
      'number=0x10',
      'number=%201',
      'size=',
      'number=-0',
    ]) {
      const res = await a1.get(`/api/v1/keys/sae-b1/enc_keys?${query}`);
      assertEtsiShape(res);
      assert.equal(res.status, 400, query);
    }
    assert.deepEqual(await snapshot(), before, 'no key was taken or left waiting');
  });
});
