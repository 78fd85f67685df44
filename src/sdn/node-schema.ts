import { Ajv, type ValidateFunction } from 'ajv';

/**
 * JSON Schemas for the RFC 7951 encoding of ETSI GS QKD 015 V2.1.1's node model, written by us from
 * the published YANG modules `etsi-qkd-sdn-node` and `etsi-qkd-node-types` (both revision
 * 2022-01-30; ETSI ISG QKD, forge.etsi.org/rep/qkd/gs015-ctrl-int-sdn, mirrored on GitHub) and the
 * typedefs of `ietf-yang-types` (RFC 6991) they use, plus our extension leaf (docs/sdn.md). Not a
 * copy of the modules: a schema of the JSON they define, strict about names (unknown members are
 * refused) and about the types below.
 *
 * RFC 7951 encodings: uint32 is a JSON number; uint64 and decimal64 are strings (§6.1);
 * identityrefs are `module:identity` (§6.8); leaf-lists and lists are arrays.
 */

const T = 'etsi-qkd-node-types';
const UUID = {
  type: 'string',
  pattern: '^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$',
};
const DATE_AND_TIME = {
  type: 'string',
  pattern: '^\\d{4}-\\d{2}-\\d{2}T\\d{2}:\\d{2}:\\d{2}(\\.\\d+)?(Z|[+-]\\d{2}:\\d{2})$',
};
const UINT32 = { type: 'integer', minimum: 0, maximum: 4_294_967_295 };
const UINT64 = { type: 'string', pattern: '^(0|[1-9][0-9]{0,19})$' };
const DECIMAL64_3 = { type: 'string', pattern: '^-?[0-9]+(\\.[0-9]{1,3})?$' };
const URI = { type: 'string', minLength: 1 };
const BOOLEAN = { type: 'boolean' };
const identities = (...names: string[]) => ({ enum: names.map((n) => `${T}:${n}`) });
const obj = (properties: Record<string, unknown>, required: string[] = []) => ({
  type: 'object',
  properties,
  required,
  additionalProperties: false,
});
const list = (items: unknown) => ({ type: 'array', items });

/** The identities of `etsi-qkd-node-types` each leaf may take. */
export const IDENTITIES = {
  technology: ['CV-QKD', 'DV-QKD', 'DV-QKD-COW', 'DV-QKD-2Ws'],
  nodeStatus: ['NEW', 'OPERATING', 'DOWN', 'FAILURE', 'OUT'],
  linkType: ['VIRT', 'PHYS'],
  role: ['TRANSMITTER', 'RECEIVER', 'TRANSCEIVER'],
  appType: ['CLIENT', 'INTERNAL'],
  physPerf: ['QBER', 'SNR'],
  linkStatus: ['ACTIVE', 'PASSIVE', 'PENDING', 'OFF'],
  ifaceStatus: ['ENABLED', 'DISABLED', 'FAILED'],
  appStatus: ['ON', 'DISCONNECTED', 'OUT-OF-TIME', 'ZOMBIE'],
} as const;

/** app_qos with the augmentation 015 makes of it (augmented_app_qos). */
const APP_QOS = obj({
  max_bandwidth: UINT32,
  min_bandwidth: UINT32,
  jitter: UINT32,
  ttl: UINT32,
  clients_shared_path_enable: BOOLEAN,
  clients_shared_keys_required: BOOLEAN,
});

/** The leaves of a qkd_app a client may write (the model's `config true` ones). */
const APP_CONFIG = {
  app_id: UUID,
  app_type: identities(...IDENTITIES.appType),
  server_app_id: URI,
  client_app_id: list(URI),
  app_priority: UINT32,
  expiration_time: DATE_AND_TIME,
  app_qos: APP_QOS,
  backing_qkdl_id: list(UUID),
  local_qkdn_id: UUID,
  remote_qkdn_id: UUID,
};

/** One qkd_app entry as a controller writes it: app_id (the list key) and config leaves only. */
export const APP_WRITE_SCHEMA = obj(APP_CONFIG, ['app_id']);

const APP_SCHEMA = obj(
  {
    ...APP_CONFIG,
    app_status: identities(...IDENTITIES.appStatus),
    creation_time: DATE_AND_TIME,
    app_statistics: obj({
      statistics: list(
        obj({ end_time: DATE_AND_TIME, start_time: DATE_AND_TIME, consumed_bits: UINT32 }, ['end_time']),
      ),
    }),
  },
  ['app_id'],
);

const INTERFACE_SCHEMA = obj(
  {
    qkdi_id: UINT32,
    qkdi_model: { type: 'string' },
    qkdi_type: identities(...IDENTITIES.technology),
    qkdi_att_point: obj({ device: { type: 'string' }, port: UINT32 }),
    qkdi_capabilities: obj({
      role_support: identities(...IDENTITIES.role),
      wavelength_range: { type: 'string' },
      max_absorption: DECIMAL64_3,
    }),
    qkdi_status: identities(...IDENTITIES.ifaceStatus),
  },
  ['qkdi_id'],
);

const LINK_END = obj({ qkdn_id: UUID, qkdi_id: UINT32 });
const VIRT_LEAVES = ['virt_prev_hop', 'virt_next_hop', 'virt_bandwidth'];
const PHYS_LEAVES = ['phys_channel_att', 'phys_wavelength', 'phys_qkd_role'];
/** The model's `when` statements: virtual-link leaves only on VIRT links, physical ones only on PHYS. */
const onlyWhen = (type: string, leaves: string[]) => ({
  if: { not: { properties: { qkdl_type: { const: `${T}:${type}` } }, required: ['qkdl_type'] } },
  then: { not: { anyOf: leaves.map((l) => ({ required: [l] })) } },
});

const LINK_SCHEMA = {
  ...obj(
    {
      qkdl_id: UUID,
      qkdl_status: identities(...IDENTITIES.linkStatus),
      qkdl_enable: BOOLEAN,
      qkdl_local: LINK_END,
      qkdl_remote: LINK_END,
      qkdl_type: identities(...IDENTITIES.linkType),
      qkdl_applications: list(UUID),
      virt_prev_hop: UUID,
      virt_next_hop: list(UUID),
      virt_bandwidth: UINT32,
      phys_channel_att: DECIMAL64_3,
      phys_wavelength: { type: 'string', pattern: '^[1-9][0-9]{0,3}$' },
      phys_qkd_role: identities(...IDENTITIES.role),
      qkdl_performance: obj({
        expected_consumption: UINT32,
        skr: UINT32,
        eskr: UINT32,
        phys_perf: list(obj({ perf_type: identities(...IDENTITIES.physPerf), value: DECIMAL64_3 }, ['perf_type'])),
        // Ours (module qks-sdn-ext): bits of this KME's share of the link's pool, uint64.
        'qks-sdn-ext:key_availability_bits': UINT64,
      }),
      // Ours: the KMEs of a relay path a controller installed (by KME ID, this one first).
      'qks-sdn-ext:path': { ...list({ type: 'string', minLength: 1, maxLength: 128 }), minItems: 2, maxItems: 32 },
    },
    ['qkdl_id'],
  ),
  allOf: [
    onlyWhen('VIRT', [...VIRT_LEAVES, 'qks-sdn-ext:path']),
    onlyWhen('PHYS', PHYS_LEAVES),
    // phys_perf sits under qkdl_performance, also only on PHYS links.
    {
      if: { not: { properties: { qkdl_type: { const: `${T}:PHYS` } }, required: ['qkdl_type'] } },
      then: { properties: { qkdl_performance: { not: { required: ['phys_perf'] } } } },
    },
  ],
};

export const NODE_SCHEMA = obj(
  {
    qkdn_id: UUID,
    qkdn_status: identities(...IDENTITIES.nodeStatus),
    qkdn_version: { type: 'string' },
    qkdn_location_id: { type: 'string' },
    qkdn_capabilities: obj({
      link_stats_support: BOOLEAN,
      application_stats_support: BOOLEAN,
      key_relay_mode_enable: BOOLEAN,
    }),
    qkd_applications: obj({ qkd_app: list(APP_SCHEMA) }),
    qkd_interfaces: obj({ qkd_interface: list(INTERFACE_SCHEMA) }),
    qkd_links: obj({ qkd_link: list(LINK_SCHEMA) }),
  },
  ['qkdn_id'],
);

/** The whole answer to `GET /restconf/data/etsi-qkd-sdn-node:qkd_node`. */
export const NODE_DOCUMENT_SCHEMA = obj({ 'etsi-qkd-sdn-node:qkd_node': NODE_SCHEMA }, ['etsi-qkd-sdn-node:qkd_node']);

/** Schemas of the resources below qkd_node, as RESTCONF answers them (RFC 8040 §3.5.3 names). */
export const RESOURCE_SCHEMAS = {
  qkd_applications: obj({ 'etsi-qkd-sdn-node:qkd_applications': obj({ qkd_app: list(APP_SCHEMA) }) }),
  qkd_interfaces: obj({ 'etsi-qkd-sdn-node:qkd_interfaces': obj({ qkd_interface: list(INTERFACE_SCHEMA) }) }),
  qkd_links: obj({ 'etsi-qkd-sdn-node:qkd_links': obj({ qkd_link: list(LINK_SCHEMA) }) }),
  qkd_app: obj({ 'etsi-qkd-sdn-node:qkd_app': { ...list(APP_SCHEMA), minItems: 1, maxItems: 1 } }),
  qkd_interface: obj({ 'etsi-qkd-sdn-node:qkd_interface': { ...list(INTERFACE_SCHEMA), minItems: 1, maxItems: 1 } }),
  qkd_link: obj({ 'etsi-qkd-sdn-node:qkd_link': { ...list(LINK_SCHEMA), minItems: 1, maxItems: 1 } }),
};

const ajv = new Ajv({ allErrors: true, strict: false });

/** Validates a qkd_app a client wrote. */
export const validateAppWrite: ValidateFunction = ajv.compile(APP_WRITE_SCHEMA);
/** Validates a qkd_link a controller wrote: a virtual link with the path it installs. */
export const validateLinkWrite: ValidateFunction = ajv.compile({
  ...LINK_SCHEMA,
  required: ['qkdl_id', 'qkdl_type', 'qkdl_remote', 'qks-sdn-ext:path'],
});
/** Validates a whole node document (used by the tests, and available to a controller). */
export const validateNodeDocument: ValidateFunction = ajv.compile(NODE_DOCUMENT_SCHEMA);

/** The first problem of a failed validation, in words for an error-message. */
export function firstProblem(validate: ValidateFunction): string {
  const e = validate.errors?.[0];
  if (!e) return 'invalid value';
  const where = e.instancePath || '(the entry)';
  if (e.keyword === 'additionalProperties')
    return `${where}: unknown or read-only leaf ${(e.params as { additionalProperty: string }).additionalProperty}`;
  return `${where} ${e.message ?? 'is invalid'}`;
}
