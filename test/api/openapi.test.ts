import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { after, before, describe, it } from 'node:test';
import { Ajv2020 } from 'ajv/dist/2020.js';
import { parse } from 'yaml';
import { parseReservation, parseReservationBatch } from '../../src/domain/peer-messages.js';
import { TestClient, type HttpResult } from '../helpers/sae-client.js';
import { eventually, startSites, type TwoSites } from '../helpers/two-kmes.js';

interface Doc {
  paths: Record<
    string,
    Record<
      string,
      { responses: Record<string, { $ref?: string; content?: { 'application/json': { schema: object } } }> }
    >
  >;
  components: Record<string, Record<string, unknown>>;
}

const load = (file: string) =>
  parse(readFileSync(new URL(`../../../docs/${file}`, import.meta.url), 'utf8'), { merge: true }) as Doc;

/** Validates a real response against the documented one for its path, method and status. */
function checker(doc: Doc) {
  const ajv = new Ajv2020({ strict: false, allErrors: true });
  ajv.addSchema({ ...doc, $id: 'doc' });
  return (path: string, method: string, res: HttpResult) => {
    const op = doc.paths[path]?.[method.toLowerCase()];
    assert.ok(op, `${method} ${path} is documented`);
    let response = op.responses[String(res.status)];
    assert.ok(response, `${method} ${path} documents status ${res.status}`);
    if (response.$ref)
      response = (doc.components['responses'] as Record<string, typeof response>)[response.$ref.split('/').pop()!]!;
    const schema = response.content?.['application/json']?.schema;
    if (!schema) {
      assert.equal(res.text, '', `${res.status} has no body`);
      return;
    }
    const ref = JSON.stringify(schema).includes('$ref')
      ? { $ref: `doc#${(schema as { $ref: string }).$ref.slice(1)}` }
      : schema;
    const valid = ajv.validate(ref, res.body);
    assert.ok(valid, `${method} ${path} ${res.status}: ${ajv.errorsText()} in ${res.text.slice(0, 300)}`);
  };
}

const documented = (doc: Doc) =>
  Object.entries(doc.paths)
    .flatMap(([path, ops]) => Object.keys(ops).map((m) => `${m.toUpperCase()} ${path.replace(/\{[^}]+\}/g, ':id')}`))
    .sort();

describe('OpenAPI documents', () => {
  const api = load('openapi.yaml');
  const channel = load('kme-channel.openapi.yaml');
  let sites: TwoSites;
  before(async () => {
    sites = await startSites({ access: { admins: ['sae-a1'] } });
    await eventually(
      async () =>
        ((await sites.sae('sae-a1').get('/api/v1/keys/sae-b1/status')).body as { stored_key_count: number })
          .stored_key_count > 10,
    );
  });
  after(() => sites.stop());

  it('document exactly the routes the servers serve', () => {
    const routes = sites.kmes.get('kme-a')!.routes;
    assert.deepEqual([...routes.sae].sort(), documented(api));
    assert.deepEqual([...routes.kme].sort(), documented(channel));
  });

  it('document only the standard’s status codes', () => {
    for (const doc of [api, channel]) {
      for (const ops of Object.values(doc.paths)) {
        for (const op of Object.values(ops))
          assert.deepEqual(Object.keys(op.responses).sort(), ['200', '400', '401', '503']);
      }
    }
  });

  it('match real responses of every endpoint, for every status', async () => {
    const check = checker(api);
    const a1 = sites.sae('sae-a1');
    const b1 = sites.sae('sae-b1');
    const deployment = sites.deployment;
    const kmeA = deployment.configs.find((c) => c.kme === 'kme-a')!.config;
    const anonymous = new TestClient(`https://127.0.0.1:${kmeA.sae_api.port}`, { ca: deployment.ca });
    try {
      const S = '/api/v1/keys/{slave_SAE_ID}/status';
      const E = '/api/v1/keys/{slave_SAE_ID}/enc_keys';
      const D = '/api/v1/keys/{master_SAE_ID}/dec_keys';
      check(S, 'GET', await a1.get('/api/v1/keys/sae-b1/status'));
      check(S, 'GET', await a1.get('/api/v1/keys/nobody/status'));
      check(S, 'GET', await anonymous.get('/api/v1/keys/sae-b1/status'));
      const post = await a1.post('/api/v1/keys/sae-b1/enc_keys', { number: 2, size: 512 });
      check(E, 'POST', post);
      check(E, 'POST', await a1.post('/api/v1/keys/sae-b1/enc_keys', { size: 7 }));
      check(E, 'POST', await a1.post('/api/v1/keys/sae-b1/enc_keys', { extension_mandatory: [{ abc_x: 1 }] }));
      check(E, 'POST', await a1.post('/api/v1/keys/sae-b1/enc_keys', { number: 128, size: 8192 }));
      check(E, 'POST', await anonymous.post('/api/v1/keys/sae-b1/enc_keys', {}));
      const get = await a1.get('/api/v1/keys/sae-b1/enc_keys?number=1');
      check(E, 'GET', get);
      check(E, 'GET', await a1.get('/api/v1/keys/sae-b1/enc_keys?number=x'));
      const keys = (post.body as { keys: Array<{ key_ID: string }> }).keys;
      check(
        D,
        'POST',
        await b1.post('/api/v1/keys/sae-a1/dec_keys', { key_IDs: keys.map((k) => ({ key_ID: k.key_ID })) }),
      );
      check(D, 'POST', await b1.post('/api/v1/keys/sae-a1/dec_keys', { key_IDs: [] }));
      const one = (get.body as { keys: Array<{ key_ID: string }> }).keys[0]!.key_ID;
      check(D, 'GET', await sites.sae('sae-b2').get(`/api/v1/keys/sae-a1/dec_keys?key_ID=${one}`));
      check(D, 'GET', await b1.get(`/api/v1/keys/sae-a1/dec_keys?key_ID=${one}`));
      check(D, 'GET', await b1.get(`/api/v1/keys/sae-a1/dec_keys?key_ID=${one}`));
      check('/api/v1/preferences', 'GET', await a1.get('/api/v1/preferences'));
      check('/api/v1/preferences', 'GET', await anonymous.get('/api/v1/preferences'));
      const P = '/api/v1/preferences/preference';
      check(P, 'POST', await a1.post(P, { name: 'log_level', value: 'debug' }));
      check(P, 'POST', await a1.post(P, { name: 'log_level', value: 'shout' }));
      check(P, 'POST', await b1.post(P, { name: 'log_level', value: 'debug' }));
      check('/api/v1/information/info', 'GET', await a1.get('/api/v1/information/info'));
      const O = '/api/v1/admin/overview';
      check(O, 'GET', await a1.get(O));
      check(O, 'GET', await b1.get(O));
      const R = '/api/v1/integrations/report';
      const report = {
        kind: 'tunnel',
        name: 'client:127.0.0.1:5000',
        key_ID: one,
        rotates_at: null,
        state: 'up',
        peer: 'sae-b1',
      };
      check(R, 'POST', await a1.post(R, report));
      check(R, 'POST', await a1.post(R, { ...report, kind: 'vpn' }));
      check(R, 'POST', await anonymous.post(R, report));
    } finally {
      await anonymous.close();
    }
  });

  it('describes the reservations KMEs exchange', () => {
    const ajv = new Ajv2020({ strict: false });
    ajv.addSchema({ ...channel, $id: 'channel' });
    const message = parseReservation({
      link_ID: 'link-a-b',
      master_SAE_ID: 'sae-a1',
      slave_SAE_IDs: ['sae-b1'],
      keys: [{ key_ID: '6f89fb6f-5fa9-46a5-b69b-e68d7c8ecd58', size: 512, blocks: [10, 12] }],
    });
    const batch = parseReservationBatch({ reservations: [message] });
    assert.ok(ajv.validate({ $ref: 'channel#/components/schemas/ReservationBatch' }, batch), ajv.errorsText());
    assert.ok(!ajv.validate({ $ref: 'channel#/components/schemas/Reservation' }, { ...message, keys: [] }));
  });
});
