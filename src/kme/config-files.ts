import { createPrivateKey, X509Certificate } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { unreadable } from '../config/files.js';
import { readCrl } from '../pki/crl.js';
import { ConfigError, type KmeConfig } from './config.js';

/** `kme-a.json: ` before a message about a configuration loaded from that file; nothing otherwise. */
export const inConfig = (cfg: KmeConfig): string => (cfg.source_file ? `${cfg.source_file}: ` : '');

type Kind = 'certificate' | 'key' | 'crl' | 'seed';

interface NamedFile {
  readonly field: string;
  readonly path: string;
  readonly kind: Kind;
}

/** Every file a KME configuration names (besides data_dir's own), with the key that names it. */
export function filesOf(cfg: KmeConfig): NamedFile[] {
  const files: Array<{ field: string; path: string | undefined; kind: Kind }> = [
    { field: 'sae_api.cert', path: cfg.sae_api.cert, kind: 'certificate' },
    { field: 'sae_api.key', path: cfg.sae_api.key, kind: 'key' },
    { field: 'sae_api.client_ca', path: cfg.sae_api.client_ca, kind: 'certificate' },
    { field: 'sae_api.crl', path: cfg.sae_api.crl, kind: 'crl' },
    { field: 'sae_api.auth.oidc.ca', path: cfg.sae_api.auth.oidc?.ca, kind: 'certificate' },
    { field: 'kme_api.cert', path: cfg.kme_api.cert, kind: 'certificate' },
    { field: 'kme_api.key', path: cfg.kme_api.key, kind: 'key' },
    { field: 'kme_api.ca', path: cfg.kme_api.ca, kind: 'certificate' },
    { field: 'kme_api.crl', path: cfg.kme_api.crl, kind: 'crl' },
    { field: 'postgres.ssl.ca', path: cfg.postgres?.ssl?.ca, kind: 'certificate' },
    { field: 'postgres.ssl.cert', path: cfg.postgres?.ssl?.cert, kind: 'certificate' },
    { field: 'postgres.ssl.key', path: cfg.postgres?.ssl?.key, kind: 'key' },
    ...cfg.links.map((l, i) => ({
      field: `links[${i}].source.seed_file`,
      path: l.source.seed_file,
      kind: 'seed' as const,
    })),
  ];
  return files.filter((f): f is NamedFile => f.path !== undefined);
}

/** Why a readable file is not what its key says it is, or undefined. Never quotes the file. */
function wrongContents({ path, kind }: NamedFile): string | undefined {
  try {
    if (kind === 'certificate') new X509Certificate(readFileSync(path));
    else if (kind === 'key') createPrivateKey(readFileSync(path));
    else if (kind === 'crl') readCrl(path);
    return undefined;
  } catch {
    return `${path} is not a PEM ${kind === 'crl' ? 'revocation list' : kind === 'key' ? 'private key' : kind}`;
  }
}

/** An API's key that does not belong to its certificate fails every handshake. */
function keyMismatch(cfg: KmeConfig, api: 'sae_api' | 'kme_api'): string | undefined {
  try {
    const cert = new X509Certificate(readFileSync(cfg[api].cert));
    if (cert.checkPrivateKey(createPrivateKey(readFileSync(cfg[api].key)))) return undefined;
  } catch {
    return undefined;
  }
  return `${api}.key: ${cfg[api].key} is not the key of ${api}.cert ${cfg[api].cert}`;
}

/**
 * Refuses to start when a certificate, key, CA, revocation list or seed the configuration names
 * cannot be read or is not what its key says, one line per file: `kme-a.json: sae_api.cert: cannot
 * read /etc/qks/a.pem (no such file)`.
 */
export function checkConfigFiles(cfg: KmeConfig): void {
  const problems: string[] = [];
  for (const f of filesOf(cfg)) {
    const why = unreadable(f.path);
    const wrong = why ? `cannot read ${f.path} (${why})` : wrongContents(f);
    if (wrong) problems.push(`${f.field}: ${wrong}`);
  }
  if (problems.length === 0) {
    for (const api of ['sae_api', 'kme_api'] as const) {
      const mismatch = keyMismatch(cfg, api);
      if (mismatch) problems.push(mismatch);
    }
  }
  if (problems.length > 0) throw new ConfigError(problems.map((p) => `${inConfig(cfg)}${p}`).join('\n'));
}
