import { Ajv } from 'ajv';
import { readFileSync } from 'node:fs';
import { dirname, isAbsolute, resolve } from 'node:path';
import { fileProblem, jsonProblem } from '../config/files.js';
import { schemaProblems } from '../config/schema-problems.js';
import { checkLimits, type KeyLimits } from '../domain/limits.js';
import { insecureUrl } from '../auth/token-verifier.js';
import { LISTENER_DEFAULTS, type ListenerSettings } from './http/server-options.js';
import type { HsmMasterKeyConfig } from '../stores/hsm-master-key.js';
import { checkSettings, qkdSettingsOf, type QkdSourceConfig } from '../sources/qkd/settings.js';
import { CONFIG_SCHEMA } from './config-schema.js';

/** One KME's configuration file (JSON). docs/configuration.md describes every field. */
export interface KmeConfig {
  kme_id: string;
  /** The site's IPv4 router ID in the QKD network (docs/network.md); qks init sets it. */
  node_address?: string;
  /** Holds master.key and the key store; created by `qks init`. */
  data_dir: string;
  store: 'sqlite' | 'memory' | 'postgres';
  /** Without it, the master key is master.key in data_dir; with it, a KEK in a PKCS#11 token. */
  master_key?: HsmMasterKeyConfig;
  /** SQLite `synchronous`: FULL (default) and EXTRA keep answered commits across a power loss. */
  store_synchronous: 'FULL' | 'EXTRA' | 'NORMAL';
  /** With store "postgres": where the database is (docs/configuration.md). */
  postgres?: PostgresConfig;
  sae_api: {
    host: string;
    port: number;
    cert: string;
    key: string;
    client_ca: string;
    /** Revocation list of the SAE CA; reloaded when the file changes. */
    crl?: string;
    connections?: ListenerSettings;
    auth: {
      mode: 'certificate' | 'token' | 'either' | 'both';
      oidc?: {
        issuer: string;
        audience: string;
        algorithms?: string[];
        sae_claim?: string;
        ca?: string;
        /** Tests and development only: an http:// issuer on loopback. */
        allow_loopback_http?: boolean;
      };
    };
  };
  kme_api: {
    host: string;
    port: number;
    cert: string;
    key: string;
    ca: string;
    crl?: string;
    connections?: ListenerSettings;
  };
  /** SKIP key-provider interface for routers (docs/skip.md): PSK identities and the SAEs they act as. */
  skip?: {
    host: string;
    port: number;
    clients: Array<{ identity: string; sae: string; psk_file: string }>;
  };
  access: {
    admins: string[];
    /** Operator certificates' IDs: administrators (dashboard, metrics, preferences) that take no keys. */
    operators: string[];
    admin_scope: string;
    rules: Array<{ sae: string; slaves: string[] | '*'; max_keys_per_request?: number; requests_per_minute?: number }>;
  };
  peers: Array<{ kme_id: string; url: string }>;
  /**
   * The whole QKD network, for keys between sites that share no link (relayed through trusted
   * nodes, docs/network.md): every link by its two KMEs, and the sites keys must not pass through.
   */
  network?: { links: Array<{ id: string; a: string; b: string }>; untrusted?: string[] };
  saes: Array<{ id: string; kme: string }>;
  links: Array<{
    id: string;
    endpoints: [string, string];
    block_bits: number;
    capacity_blocks: number;
    source: SimulatedSourceConfig | QkdSourceConfig;
  }>;
  limits: {
    key_size: number;
    min_key_size: number;
    max_key_size: number;
    max_key_per_request: number;
    max_SAE_ID_count: number;
  };
  log_level: string;
  /** Keys a slave has not fetched are forgotten after this long; so are remembered cancellations. */
  key_ttl_seconds: number;
  /** Upkeep of the revocation lists (sae_api.crl, kme_api.crl): renewal, warnings before they expire. */
  crl: {
    /** Issues a list again at half its lifetime, with the CA key found beside it (`<ca>.key`). */
    renew: boolean;
    warn_before_seconds: number;
    check_interval_seconds: number;
  };
  /**
   * One of several processes serving this KME from one shared PostgreSQL store, behind one address
   * (docs/operations.md). Work with one owner moves between replicas by lease.
   */
  replica?: { name: string; lease_ms: number };
  /** The file this configuration was read from (set by loadConfig; not a key of the file): errors name it. */
  source_file?: string;
}

/** The shared-seed stand-in (not QKD). */
export interface SimulatedSourceConfig {
  type: 'simulated';
  seed_file: string;
  rate_bps: number;
  epoch_ms: number;
}

export type { QkdSourceConfig };

/** The PostgreSQL store's connection; what it leaves out, the libpq environment (PGHOST, ...) gives. */
export interface PostgresConfig {
  /** `postgres://user@host:port/database?...`; a password is better kept in PGPASSWORD or ~/.pgpass. */
  url?: string;
  /** TLS to the server: the CA of its certificate, and a client certificate and key (both or neither). */
  ssl?: { ca: string; cert?: string; key?: string };
  pool_size?: number;
  statement_timeout_ms?: number;
}

const validate = new Ajv({ useDefaults: true, allErrors: true, verbose: true, discriminator: true }).compile(
  CONFIG_SCHEMA,
);

/** A mistake in a KME's configuration or set-up that its operator can fix: `qks kme` prints it in a line and exits 2. */
export class ConfigError extends Error {
  override name = 'ConfigError';
}

/** `invalid configuration FILE: problem`, or one problem a line under it. */
function invalid(problems: readonly string[], file?: string): ConfigError {
  const what = `invalid configuration${file ? ` ${file}` : ''}`;
  return new ConfigError(problems.length === 1 ? `${what}: ${problems[0]}` : `${what}:\n  ${problems.join('\n  ')}`);
}

/**
 * Validates a parsed configuration, fills defaults and resolves paths against `baseDir`. `file`,
 * when given, is named in errors.
 */
export function parseConfig(raw: unknown, baseDir: string, file?: string): KmeConfig {
  const cfg = structuredClone(raw) as KmeConfig;
  if (typeof cfg === 'object' && cfg !== null) {
    cfg.peers ??= [];
    (cfg as { limits?: unknown }).limits ??= {};
    (cfg as { access?: unknown }).access ??= {};
    (cfg as { crl?: unknown }).crl ??= {};
    if (typeof cfg.sae_api === 'object' && cfg.sae_api !== null) (cfg.sae_api as { auth?: unknown }).auth ??= {};
  }
  const masterKey = (cfg as { master_key?: unknown }).master_key;
  if (typeof masterKey === 'object' && masterKey !== null && 'pin' in masterKey) {
    throw invalid(
      ['master_key.pin: the PIN is never read from the configuration; use master_key.pin_file or QKS_HSM_PIN'],
      file,
    );
  }
  if (!validate(cfg)) throw invalid(schemaProblems(validate.errors ?? []), file);
  const problems = [...checkLimits(limitsOf(cfg)), ...crossCheck(cfg)];
  if (problems.length > 0) throw invalid(problems, file);
  const abs = (p: string) => (isAbsolute(p) ? p : resolve(baseDir, p));
  cfg.data_dir = abs(cfg.data_dir);
  if (cfg.master_key?.pin_file) cfg.master_key.pin_file = abs(cfg.master_key.pin_file);
  for (const api of [cfg.sae_api, cfg.kme_api] as Array<Record<string, unknown>>) {
    for (const k of ['cert', 'key', 'client_ca', 'ca', 'crl']) if (typeof api[k] === 'string') api[k] = abs(api[k]);
  }
  if (cfg.sae_api.auth.oidc?.ca) cfg.sae_api.auth.oidc.ca = abs(cfg.sae_api.auth.oidc.ca);
  for (const c of cfg.skip?.clients ?? []) c.psk_file = abs(c.psk_file);
  const ssl = cfg.postgres?.ssl as Record<string, string> | undefined;
  for (const k of ['ca', 'cert', 'key']) if (ssl && typeof ssl[k] === 'string') ssl[k] = abs(ssl[k]);
  for (const link of cfg.links) link.source.seed_file = abs(link.source.seed_file);
  if (file !== undefined) cfg.source_file = file;
  return cfg;
}

function crossCheck(cfg: KmeConfig): string[] {
  const problems: string[] = [];
  const saeKmes = new Set(cfg.saes.map((s) => s.kme));
  if (new Set(cfg.saes.map((s) => s.id)).size !== cfg.saes.length) problems.push('saes: an SAE ID appears twice');
  if (!saeKmes.has(cfg.kme_id)) problems.push(`saes: no SAE is served by this KME (${cfg.kme_id})`);
  for (const [name, c] of [
    ['sae_api', cfg.sae_api.connections],
    ['kme_api', cfg.kme_api.connections],
  ] as const) {
    const headers = c?.headers_timeout_ms ?? LISTENER_DEFAULTS.headers_timeout_ms;
    if (headers > (c?.request_timeout_ms ?? LISTENER_DEFAULTS.request_timeout_ms))
      problems.push(`${name}.connections: headers_timeout_ms must not exceed request_timeout_ms`);
  }
  const { oidc } = cfg.sae_api.auth;
  const insecureIssuer = oidc && insecureUrl(oidc.issuer, oidc.allow_loopback_http);
  if (insecureIssuer) problems.push(`sae_api.auth.oidc.issuer: ${insecureIssuer}`);
  if (cfg.sae_api.auth.mode !== 'certificate' && !cfg.sae_api.auth.oidc) {
    problems.push(`sae_api.auth: mode ${cfg.sae_api.auth.mode} needs an oidc section`);
  }
  for (const c of cfg.skip?.clients ?? []) {
    if (cfg.saes.find((s) => s.id === c.sae)?.kme !== cfg.kme_id)
      problems.push(`skip.clients: SAE ${c.sae} is not served by this KME (${cfg.kme_id})`);
  }
  if (cfg.skip && new Set(cfg.skip.clients.map((c) => c.identity)).size !== cfg.skip.clients.length)
    problems.push('skip.clients: a PSK identity appears twice');
  if (cfg.postgres && cfg.store !== 'postgres')
    problems.push(`postgres: used only with store "postgres" (store is "${cfg.store}")`);
  if (cfg.postgres?.ssl && (cfg.postgres.ssl.cert === undefined) !== (cfg.postgres.ssl.key === undefined))
    problems.push('postgres.ssl: cert and key go together');
  // The URL's TLS parameters would replace postgres.ssl whole (node-postgres), its CA check with them.
  if (cfg.postgres?.ssl && /[?&](ssl|sslmode|sslrootcert|sslcert|sslkey)=/.test(cfg.postgres.url ?? ''))
    problems.push('postgres.url: no ssl parameters in the URL when postgres.ssl is given');
  const known = new Set(cfg.saes.map((s) => s.id));
  for (const sae of [...cfg.access.admins, ...cfg.access.rules.map((r) => r.sae)]) {
    if (!known.has(sae)) problems.push(`access: unknown SAE ${sae}`);
  }
  if (cfg.replica && cfg.store !== 'postgres') {
    problems.push(`replica: replicas share one store: set store to "postgres" (${cfg.store} is one process's own)`);
  }
  if (cfg.replica && cfg.master_key) {
    problems.push(
      'replica: replicas cannot keep their master key in a PKCS#11 token yet (each would make data keys of its own); use master.key',
    );
  }
  for (const link of cfg.links) {
    if (!link.endpoints.includes(cfg.kme_id)) problems.push(`links.${link.id}: this KME is not an endpoint`);
    if (link.endpoints[0] === link.endpoints[1]) problems.push(`links.${link.id}: endpoints must differ`);
    const peer = link.endpoints.find((e) => e !== cfg.kme_id);
    if (peer && !cfg.peers.some((p) => p.kme_id === peer))
      problems.push(`links.${link.id}: no peers entry for ${peer}`);
    if (link.source.type === 'qkd') {
      for (const p of checkSettings(qkdSettingsOf(link.source))) problems.push(`links.${link.id}.source: ${p}`);
    }
  }
  return problems;
}

export function limitsOf(cfg: KmeConfig): KeyLimits {
  return {
    keySize: cfg.limits.key_size,
    minKeySize: cfg.limits.min_key_size,
    maxKeySize: cfg.limits.max_key_size,
    maxKeyPerRequest: cfg.limits.max_key_per_request,
    maxSaeIdCount: cfg.limits.max_SAE_ID_count,
  };
}

export function loadConfig(file: string): KmeConfig {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    throw new ConfigError(`cannot read configuration ${file} (${fileProblem(err)})`);
  }
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (err) {
    throw new ConfigError(`configuration ${file} is not valid JSON: ${jsonProblem(err as Error, text)}`);
  }
  return parseConfig(raw, dirname(resolve(file)), file);
}
