import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { after, before, describe, it } from 'node:test';
import { pino } from 'pino';
import type { ReservationBatch, ReservationResults } from '../../src/domain/peer-messages.js';
import { CANCELLATIONS_CHANNEL, RESERVATIONS_CHANNEL } from '../../src/kme/peer-messages-service.js';
import { PeerStreamClient } from '../../src/kme/peer-stream/client.js';
import { PeerStreamRefusal } from '../../src/kme/peer-stream/connection.js';
import { fetchKeys, keysOf } from '../helpers/key-traffic.js';
import { assertSameKeys, shown } from '../helpers/redact.js';
import { eventually, startSites, type TwoSites } from '../helpers/two-kmes.js';

const json = (body: unknown) => Buffer.from(JSON.stringify(body));

/**
 * Three KMEs in a chain (kme-a — kme-b — kme-c), real processes' code over real TLS. The test
 * speaks on kme-b's KME channel with the certificates `qks init` issued to kme-a and kme-c.
 */
describe('the KME channel between three KMEs', () => {
  let sites: TwoSites;
  const streams: PeerStreamClient[] = [];

  /** A stream to kme-b holding the certificate of `as`. */
  const streamAs = (as: string) => {
    const own = sites.deployment.configs.find((c) => c.kme === as)!.config.kme_api;
    const b = sites.deployment.configs.find((c) => c.kme === 'kme-b')!.config.kme_api;
    const stream = new PeerStreamClient({
      kmeId: 'kme-b',
      url: `https://127.0.0.1:${b.port}`,
      tls: { key: readFileSync(own.key), cert: readFileSync(own.cert), ca: readFileSync(own.ca) },
      log: pino({ level: 'silent' }),
      timeoutMs: 30_000,
    });
    streams.push(stream);
    return stream;
  };

  async function crossKeys(number: number) {
    const res = await sites.sae('sae-a1').post('/api/v1/keys/sae-b1/enc_keys', { number, size: 256 });
    assert.equal(res.status, 200, shown(res));
    return keysOf(res);
  }

  before(async () => {
    sites = await startSites({ kmes: ['kme-a', 'kme-b', 'kme-c'], rateBps: 1_000_000 });
    await eventually(
      async () => {
        const s = await sites.sae('sae-a1').get('/api/v1/keys/sae-b1/status');
        return (s.body as { stored_key_count: number }).stored_key_count >= 20;
      },
      15_000,
      'key material',
    );
  });
  after(async () => {
    for (const s of streams) s.close();
    await sites?.stop();
  });

  it('refuses a cancel from a KME that did not reserve the keys, and the slave still gets them', async () => {
    const keys = await crossKeys(2);
    const ids = keys.map((k) => k.key_ID);
    await assert.rejects(streamAs('kme-c').request(CANCELLATIONS_CHANNEL, json({ key_IDs: ids })), (err: unknown) => {
      assert.ok(err instanceof PeerStreamRefusal, String(err));
      assert.equal(err.peerCode, 'BAD_REQUEST');
      assert.match(err.message, /KME kme-c may cancel only keys it reserved/);
      return true;
    });
    const got = await fetchKeys(sites.sae('sae-b1'), 'sae-a1', ids, false);
    assert.ok(got.ok, got.ok ? '' : shown(got.res));
    assertSameKeys(got.ok ? got.keys : [], keys, 'the slave gets the keys its master holds');
  });

  it('lets the KME that reserved keys cancel them', async () => {
    const [key] = await crossKeys(1);
    const reply = await streamAs('kme-a').request(CANCELLATIONS_CHANNEL, json({ key_IDs: [key!.key_ID] }));
    assert.deepEqual(JSON.parse(reply.toString()), { ok: true, removed: 1 });
    const got = await fetchKeys(sites.sae('sae-b1'), 'sae-a1', [key!.key_ID], false);
    assert.equal(got.ok ? 200 : got.res.status, 400);
  });

  it('answers a reservation of 131,072 blocks not there yet, and one beyond the link, each on its own', async () => {
    // 4096 keys of 8192 bits: 131,072 block numbers of kme-a's (even), all a little ahead of what the
    // link has produced, within what it can have: kme-b waits for them, then refuses.
    const link = sites.deployment.configs.find((c) => c.kme === 'kme-b')!.config.links[0]!;
    assert.equal(link.source.type, 'simulated');
    const { epoch_ms, rate_bps } = link.source as { epoch_ms: number; rate_bps: number };
    const produced = Math.floor((((Date.now() - epoch_ms) / 1000) * rate_bps) / 256);
    const first = 2 * Math.ceil((produced + 20_000) / 2);
    const huge = Array.from({ length: 4096 }, (_, k) => ({
      key_ID: randomUUID(),
      size: 8192,
      blocks: Array.from({ length: 32 }, (_, i) => first + 2 * (32 * k + i)),
    }));
    const far = [{ key_ID: randomUUID(), size: 256, blocks: [2 ** 53 - 2] }];
    const reservation = (keys: typeof far) => ({
      link_ID: 'link-a-b',
      master_SAE_ID: 'sae-a1',
      slave_SAE_IDs: ['sae-b1'],
      keys,
    });
    const batch: ReservationBatch = { reservations: [reservation(huge), reservation(far)] };
    const reply = await streamAs('kme-a').request(RESERVATIONS_CHANNEL, json(batch));
    const { results } = JSON.parse(reply.toString()) as ReservationResults;
    const reasons = results.map((r) => (r.ok ? 'ok' : r.message));
    assert.equal(reasons.length, 2);
    assert.match(reasons[0]!, /blocks not available here/);
    assert.match(reasons[1]!, /beyond what the link can have produced/);
    // kme-b goes on serving kme-a's reservations.
    const keys = await crossKeys(1);
    const got = await fetchKeys(sites.sae('sae-b1'), 'sae-a1', [keys[0]!.key_ID], false);
    assert.ok(got.ok, got.ok ? '' : shown(got.res));
  });
});
