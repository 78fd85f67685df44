import { renameSync, writeFileSync } from 'node:fs';
import type { KeyRing } from './key-ring.js';

/**
 * For consumers that read files: the pair's keys as JSON (docs/sae-agreement.md), rewritten
 * atomically (write a temporary file, then rename) with mode 0600 on every change of the ring.
 */
export function writeSecretsFile(path: string, ring: KeyRing, sae: string, peer: string): void {
  const current = ring.current();
  const doc = {
    format: 'qks-sae-keys/1',
    sae_ID: sae,
    peer_SAE_ID: peer,
    current_key_ID: current?.keyId ?? null,
    keys: ring.all().map((k) => ({
      key_ID: k.keyId,
      key_hex: k.key.toString('hex'),
      agreed_at: new Date(k.agreedAt).toISOString(),
    })),
  };
  const tmp = `${path}.${process.pid}.tmp`;
  writeFileSync(tmp, JSON.stringify(doc, null, 2) + '\n', { mode: 0o600 });
  renameSync(tmp, path);
}

/** Keeps `path` in step with the ring; returns a function that stops it. */
export function keepSecretsFile(path: string, ring: KeyRing, sae: string, peer: string): () => void {
  const write = () => writeSecretsFile(path, ring, sae, peer);
  ring.on('key', write);
  ring.on('retired', write);
  return () => {
    ring.off('key', write);
    ring.off('retired', write);
  };
}
