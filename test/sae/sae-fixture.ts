import { randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { Initiator } from '../../src/sae/agreement/initiator.js';
import { Responder } from '../../src/sae/agreement/responder.js';
import type { SaeTls } from '../../src/sae/agreement/types.js';
import { KmeClient } from '../../src/sae/kme-client.js';
import type { TwoSites } from '../helpers/two-kmes.js';

/** An SAE of a running deployment: its KME client and its TLS credentials. */
export function saeOf(sites: TwoSites, id: string): { kme: KmeClient; tls: SaeTls } {
  const sae = sites.deployment.saes.find((s) => s.id === id)!;
  const config = sites.deployment.configs.find((c) => c.kme === sae.kme)!.config;
  const kme = new KmeClient({
    url: `https://127.0.0.1:${config.sae_api.port}`,
    ca: sites.deployment.ca,
    cert: sae.cert,
    key: sae.key,
    retryBaseMs: 20,
  });
  const tls = { ca: readFileSync(sites.deployment.ca), cert: readFileSync(sae.cert), key: readFileSync(sae.key) };
  return { kme, tls };
}

export function responderFor(sites: TwoSites, id: string, peers: string[], port = 0, timeoutMs = 2000): Responder {
  const { kme, tls } = saeOf(sites, id);
  return new Responder({ saeId: id, peers, kme, tls, port, timeoutMs });
}

export function initiatorFor(
  sites: TwoSites,
  id: string,
  peer: string,
  port: number,
  connectWithinMs = 3000,
): Initiator {
  const { kme, tls } = saeOf(sites, id);
  return new Initiator({
    saeId: id,
    peerSaeId: peer,
    peer: { host: '127.0.0.1', port },
    kme,
    tls,
    connectWithinMs,
    timeoutMs: 2000,
  });
}

/** An offer from sae-a1 to sae-b1 of a made-up key ID with a made-up proof, changed by `over`. */
export const madeUpOffer = (over: Record<string, unknown> = {}) => ({
  v: 3,
  type: 'offer',
  exchange: randomUUID(),
  master: 'sae-a1',
  slave: 'sae-b1',
  key_IDs: [randomUUID()],
  proof: 'AAAA',
  ...over,
});
