import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { after, before, describe, it } from 'node:test';
import { pino } from 'pino';
import { PeerStreamClient } from '../../src/kme/peer-stream/client.js';
import type { LinkStats } from '../../src/sources/key-source.js';
import { encodeEnvelope } from '../../src/sources/qkd/envelope.js';
import { eventually, startSites, type TwoSites } from '../helpers/two-kmes.js';

interface Info {
  key_sources: Array<{ kind: string; rate_bps: number; stats?: LinkStats }>;
}

/** Two KMEs fed by the QKD link simulator, its post-processing over their mutual-TLS channel. */
describe('two KMEs joined by the QKD link simulator', () => {
  let sites: TwoSites;
  before(async () => {
    sites = await startSites({
      source: 'qkd',
      qkd: {
        distance_km: 5,
        frame_pulses: 5_000_000,
        // Small frames make key only with ideal detectors (test/qkd/physics.test.ts has the real ones).
        dead_time_us: 0,
        afterpulse_probability: 0,
      },
    });
  });
  after(() => sites.stop());

  const info = async (sae: string) => (await sites.sae(sae).get('/api/v1/information/info')).body as Info;
  const stored = async () =>
    ((await sites.sae('sae-a1').get('/api/v1/keys/sae-b1/status')).body as { stored_key_count: number })
      .stored_key_count;

  it('delivers identical keys at both sites, and both ends report the same frames', async () => {
    await eventually(async () => (await stored()) > 20, 30_000, 'keys from the QKD link');
    const got = await sites.sae('sae-a1').get('/api/v1/keys/sae-b1/enc_keys?number=4');
    assert.equal(got.status, 200);
    const keys = (got.body as { keys: Array<{ key_ID: string; key: string }> }).keys;
    const fetched = await sites
      .sae('sae-b1')
      .post('/api/v1/keys/sae-a1/dec_keys', { key_IDs: keys.map((k) => ({ key_ID: k.key_ID })) });
    assert.equal(fetched.status, 200);
    // Compared without printing: key bytes never reach test output.
    assert.ok(JSON.stringify(fetched.body) === JSON.stringify({ keys }), 'the slave gets the same keys');
    const [a, b] = [(await info('sae-a1')).key_sources[0]!, (await info('sae-b1')).key_sources[0]!];
    assert.equal(a.kind, 'qkd-simulator');
    assert.ok(a.stats!.framesDone > 0 && a.stats!.secretBps > 0 && a.stats!.qber < 0.05);
    assert.ok(Math.abs(a.stats!.framesDone - b.stats!.framesDone) <= 2, 'the follower saw the same frames');
  });

  it('refuses post-processing messages from a KME that does not lead the link, and malformed ones', async () => {
    const cfg = (kme: string) => sites.deployment.configs.find((c) => c.kme === kme)!.config;
    const client = (from: string, to: string) =>
      new PeerStreamClient({
        kmeId: to,
        url: `https://127.0.0.1:${cfg(to).kme_api.port}`,
        tls: {
          cert: readFileSync(cfg(from).kme_api.cert),
          key: readFileSync(cfg(from).kme_api.key),
          ca: readFileSync(cfg(from).kme_api.ca),
        },
        log: pino({ level: 'silent' }),
      });
    const send = (c: PeerStreamClient, op: string, body: Uint8Array) =>
      c.request(`qkd/${op}`, body).then(
        () => 'answered',
        (err: Error) => err.message,
      );
    const post = (c: PeerStreamClient, op: string, body: Record<string, unknown>) => send(c, op, encodeEnvelope(body));
    const bToA = client('kme-b', 'kme-a');
    const aToB = client('kme-a', 'kme-b');
    try {
      assert.match(await post(bToA, 'fibre', { link_ID: 'link-a-b', frame: 1 }), /no QKD link led by kme-b/);
      const before = await stored();
      const bad = await post(aToB, 'fibre', {
        link_ID: 'link-a-b',
        frame: 10 ** 9,
        pulses: 5_000_000,
        count: 2,
        indices: Buffer.from([5, 0xff]),
        states: Buffer.from([0]),
      });
      assert.match(bad, /indices is truncated or malformed/);
      const unknown = await post(aToB, 'verify', { link_ID: 'link-a-b', frame: 10 ** 9 + 1, seed: Buffer.alloc(0) });
      assert.match(unknown, /unknown here/);
      const json = await send(aToB, 'verify', Buffer.from(JSON.stringify({ link_ID: 'link-a-b', frame: 1 })));
      assert.match(json, /message body/);
      const cut = encodeEnvelope({ link_ID: 'link-a-b', frame: 1, seed: Buffer.alloc(64) }).subarray(0, 40);
      assert.match(await send(aToB, 'verify', cut), /truncated/);
      await eventually(async () => (await stored()) > before, 20_000, 'the link going on');
    } finally {
      bToA.close();
      aToB.close();
    }
  });
});
