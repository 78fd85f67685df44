import assert from 'node:assert/strict';
import { recordDeliveredKeys } from './log-leaks.js';
import { startSites, type TwoSites } from './two-kmes.js';

export interface AgreedKey {
  readonly keyId: string;
  readonly key: Buffer;
}

type Keys = { keys: Array<{ key_ID: string; key: string }> };

/**
 * Keys that really came through two KMEs, for tests of the TLS and stunnel integrations: the master
 * SAE's copy from its KME (enc_keys), the slave's from the other KME (dec_keys by ID), checked equal.
 */
export class KmeKeys {
  readonly #sites: TwoSites;

  private constructor(sites: TwoSites) {
    this.#sites = sites;
  }

  static async start(): Promise<KmeKeys> {
    return new KmeKeys(await startSites({ rateBps: 1_000_000, epochMs: Date.now() - 60_000 }));
  }

  /** One key: the master's copy and the slave's, the same bytes under the same ID. */
  async next(): Promise<{ master: AgreedKey; slave: AgreedKey }> {
    const got = await this.#sites.sae('sae-a1').post('/api/v1/keys/sae-b1/enc_keys', { number: 1 });
    assert.equal(got.status, 200, 'enc_keys');
    const master = (got.body as Keys).keys[0]!;
    const fetched = await this.#sites.sae('sae-b1').post('/api/v1/keys/sae-a1/dec_keys', {
      key_IDs: [{ key_ID: master.key_ID }],
    });
    assert.equal(fetched.status, 200, 'dec_keys');
    const slave = (fetched.body as Keys).keys[0]!;
    assert.ok(slave.key_ID === master.key_ID && slave.key === master.key, 'both KMEs gave the same key');
    recordDeliveredKeys([master.key]);
    const copy = (k: { key_ID: string; key: string }) => ({ keyId: k.key_ID, key: Buffer.from(k.key, 'base64') });
    return { master: copy(master), slave: copy(slave) };
  }

  stop(): Promise<void> {
    return this.#sites.stop();
  }
}
