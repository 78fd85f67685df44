import { DEFAULT_LIMITS } from '../domain/limits.js';
import { IPV4_PATTERN } from '../domain/topology.js';
import { QKD_SOURCE_SCHEMA } from '../sources/qkd/settings.js';

// The JSON schema of a KME's configuration file (KmeConfig in config.ts; docs/configuration.md).

const id = {
  type: 'string',
  pattern: '^[A-Za-z0-9][A-Za-z0-9._~-]{0,63}$',
  description: 'an ID: 1 to 64 letters, digits and . _ ~ -, beginning with a letter or digit',
};
const path = { type: 'string', minLength: 1 };
const port = { type: 'integer', minimum: 0, maximum: 65535 };
const positive = { type: 'integer', minimum: 1 };
/** Caps and timeouts of a listener; defaults in kme/http/server-options.ts. */
const connections = {
  type: 'object',
  additionalProperties: false,
  properties: {
    max_connections: positive,
    headers_timeout_ms: positive,
    request_timeout_ms: positive,
    keep_alive_timeout_ms: positive,
    max_header_bytes: { type: 'integer', minimum: 1024, maximum: 1024 * 1024 },
  },
};
const strict = (properties: Record<string, unknown>, required = Object.keys(properties)) => ({
  type: 'object',
  properties,
  required,
  additionalProperties: false,
});

export const CONFIG_SCHEMA = strict(
  {
    kme_id: id,
    node_address: {
      type: 'string',
      pattern: IPV4_PATTERN,
      description: 'an IPv4 address, e.g. 127.0.1.1',
    },
    data_dir: path,
    store: { enum: ['sqlite', 'memory', 'postgres'], default: 'sqlite' },
    store_synchronous: { enum: ['FULL', 'EXTRA', 'NORMAL'], default: 'FULL' },
    postgres: strict(
      {
        url: {
          type: 'string',
          pattern: '^postgres(ql)?://',
          description: 'a connection string postgres://user@host:port/database',
          writeOnly: true,
        },
        ssl: strict({ ca: path, cert: path, key: path }, ['ca']),
        pool_size: { ...positive, maximum: 1000 },
        statement_timeout_ms: positive,
      },
      [],
    ),
    master_key: strict(
      {
        kind: { const: 'pkcs11' },
        module: path,
        token_label: { type: 'string', minLength: 1, maxLength: 32 },
        key_label: { ...id, default: 'qks-kek' },
        pin_file: path,
        rewrap_interval_ms: { ...positive, default: 10000 },
      },
      ['kind', 'module', 'token_label'],
    ),
    sae_api: strict(
      {
        host: { type: 'string' },
        port,
        cert: path,
        key: path,
        client_ca: path,
        crl: path,
        connections,
        auth: strict(
          {
            mode: { enum: ['certificate', 'token', 'either', 'both'], default: 'certificate' },
            oidc: strict(
              {
                issuer: { type: 'string', pattern: '^https?://' },
                audience: { type: 'string', minLength: 1 },
                algorithms: { type: 'array', items: { type: 'string' }, minItems: 1 },
                sae_claim: { type: 'string', minLength: 1 },
                ca: path,
                allow_loopback_http: { type: 'boolean' },
              },
              ['issuer', 'audience'],
            ),
          },
          [],
        ),
      },
      ['host', 'port', 'cert', 'key', 'client_ca'],
    ),
    kme_api: strict({ host: { type: 'string' }, port, cert: path, key: path, ca: path, crl: path, connections }, [
      'host',
      'port',
      'cert',
      'key',
      'ca',
    ]),
    skip: strict(
      {
        host: { type: 'string' },
        port,
        clients: {
          type: 'array',
          minItems: 1,
          items: strict({ identity: { type: 'string', minLength: 1, maxLength: 128 }, sae: id, psk_file: path }),
        },
      },
      ['host', 'port', 'clients'],
    ),
    access: strict(
      {
        admins: { type: 'array', items: id, default: [] },
        operators: { type: 'array', items: id, default: [] },
        admin_scope: { type: 'string', minLength: 1, default: 'qks:admin' },
        rules: {
          type: 'array',
          default: [],
          items: strict(
            {
              sae: id,
              slaves: {
                anyOf: [{ const: '*' }, { type: 'array', items: id }],
                description: '"*" or a list of SAE IDs',
              },
              max_keys_per_request: positive,
              requests_per_minute: positive,
            },
            ['sae', 'slaves'],
          ),
        },
      },
      [],
    ),
    peers: { type: 'array', items: strict({ kme_id: id, url: { type: 'string', pattern: '^https://' } }) },
    saes: { type: 'array', items: strict({ id, kme: id }) },
    network: strict(
      {
        links: { type: 'array', items: strict({ id, a: id, b: id }) },
        untrusted: { type: 'array', items: id },
      },
      ['links'],
    ),
    links: {
      type: 'array',
      items: strict({
        id,
        endpoints: { type: 'array', items: id, minItems: 2, maxItems: 2 },
        block_bits: { type: 'integer', minimum: 128, multipleOf: 128, default: 256 },
        capacity_blocks: { ...positive, default: 100000 },
        source: {
          type: 'object',
          discriminator: { propertyName: 'type' },
          oneOf: [
            strict({
              type: { const: 'simulated' },
              seed_file: path,
              rate_bps: { type: 'number', exclusiveMinimum: 0 },
              epoch_ms: { type: 'integer', minimum: 0 },
            }),
            QKD_SOURCE_SCHEMA,
          ],
        },
      }),
    },
    limits: strict(
      {
        key_size: { ...positive, default: DEFAULT_LIMITS.keySize },
        min_key_size: { ...positive, default: DEFAULT_LIMITS.minKeySize },
        max_key_size: { ...positive, default: DEFAULT_LIMITS.maxKeySize },
        max_key_per_request: { ...positive, default: DEFAULT_LIMITS.maxKeyPerRequest },
        max_SAE_ID_count: { type: 'integer', minimum: 0, default: DEFAULT_LIMITS.maxSaeIdCount },
      },
      [],
    ),
    key_ttl_seconds: { ...positive, default: 7 * 24 * 3600 },
    crl: strict(
      {
        renew: { type: 'boolean', default: false },
        warn_before_seconds: { ...positive, default: 30 * 24 * 3600 },
        check_interval_seconds: { ...positive, default: 60 },
      },
      [],
    ),
    replica: strict({ name: id, lease_ms: { type: 'integer', minimum: 300, maximum: 60_000, default: 3000 } }, [
      'name',
    ]),
    log_level: { enum: ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'], default: 'info' },
  },
  ['kme_id', 'data_dir', 'sae_api', 'kme_api', 'saes', 'links'],
);
