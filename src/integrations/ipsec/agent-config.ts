import { Ajv } from 'ajv';
import { readFileSync } from 'node:fs';
import { dirname, isAbsolute, resolve } from 'node:path';
import { fileProblem, jsonProblem } from '../../config/files.js';
import { schemaProblems } from '../../config/schema-problems.js';
import type { IpsecConnection } from './gateway.js';

/** The `qks ipsec --config FILE` file (JSON); docs/ipsec.md describes every field. */
export interface IpsecAgentConfig {
  /** The SAE this gateway is: a demo manifest and an SAE ID, or the SAE's own files. */
  sae: { id: string; manifest?: string; kme?: string; ca?: string; cert?: string; key?: string };
  /** The peer gateway's SAE. */
  peer: string;
  role: 'initiator' | 'responder';
  /** initiator: the peer agent's agreement address; responder: where to listen for it. */
  agree: { host: string; port: number };
  rotation: { every_seconds: number; bytes?: number };
  daemon:
    | { type: 'strongswan'; vici: string }
    | { type: 'libreswan'; ctl_socket: string; secrets_file: string; dir: string; libexec?: string };
  connection: AgentConnection | OperatorConnection;
}

/** A connection the agent defines and loads itself (PSK authentication, one child). */
export interface AgentConnection {
  defined_by?: 'agent';
  name: string;
  local_addr: string;
  remote_addr: string;
  local_id: string;
  remote_id: string;
  /** A file holding the IKE authentication secret (PSK) on its first line. */
  ike_secret_file: string;
  local_ts: string;
  remote_ts: string;
  ike_proposal?: string;
  esp_proposal?: string;
  /** `required` (default) refuses peers without the PPK; `optional` permits a downgrade. */
  ppk: 'required' | 'optional';
}

/** A connection of the operator's swanctl.conf; the agent supplies its PPK and rotation. */
export interface OperatorConnection {
  defined_by: 'operator';
  name: string;
}

export const isOperatorDefined = (c: IpsecAgentConfig['connection']): c is OperatorConnection =>
  c.defined_by === 'operator';

const text = { type: 'string', minLength: 1 };
const strict = (properties: Record<string, unknown>, required = Object.keys(properties)) => ({
  type: 'object',
  properties,
  required,
  additionalProperties: false,
});
const SCHEMA = strict({
  sae: strict({ id: text, manifest: text, kme: text, ca: text, cert: text, key: text }, ['id']),
  peer: text,
  role: { enum: ['initiator', 'responder'] },
  agree: strict({ host: text, port: { type: 'integer', minimum: 1, maximum: 65535 } }),
  rotation: strict(
    {
      every_seconds: { type: 'number', exclusiveMinimum: 0, default: 3600 },
      bytes: { type: 'integer', minimum: 1 },
    },
    [],
  ),
  daemon: {
    type: 'object',
    discriminator: { propertyName: 'type' },
    oneOf: [
      strict({ type: { const: 'strongswan' }, vici: { type: 'string', pattern: '^unix://' } }),
      strict({ type: { const: 'libreswan' }, ctl_socket: text, secrets_file: text, dir: text, libexec: text }, [
        'type',
        'ctl_socket',
        'secrets_file',
        'dir',
      ]),
    ],
  },
  connection: { type: 'object' },
});
const NAME = { type: 'string', pattern: '^[A-Za-z0-9][A-Za-z0-9_-]{0,31}$' };
const AGENT_CONNECTION = strict(
  {
    defined_by: { const: 'agent' },
    name: NAME,
    local_addr: text,
    remote_addr: text,
    local_id: text,
    remote_id: text,
    ike_secret_file: text,
    local_ts: text,
    remote_ts: text,
    ike_proposal: text,
    esp_proposal: text,
    ppk: { enum: ['required', 'optional'], default: 'required' },
  },
  ['name', 'local_addr', 'remote_addr', 'local_id', 'remote_id', 'ike_secret_file', 'local_ts', 'remote_ts'],
);
// swanctl.conf section names: anything without spaces, braces or `=`.
const OPERATOR_CONNECTION = strict({
  defined_by: { const: 'operator' },
  name: { type: 'string', pattern: '^[^\\s{}=.]+$' },
});
const ajv = new Ajv({ useDefaults: true, allErrors: true, verbose: true, discriminator: true });
const validate = ajv.compile(SCHEMA);
const validateAgent = ajv.compile(AGENT_CONNECTION);
const validateOperator = ajv.compile(OPERATOR_CONNECTION);

export class IpsecConfigError extends Error {
  override name = 'IpsecConfigError';
}

/** Validates a parsed configuration and resolves paths against `baseDir`; errors name `file` when given. */
export function parseIpsecConfig(raw: unknown, baseDir: string, file?: string): IpsecAgentConfig {
  const cfg = structuredClone(raw) as IpsecAgentConfig;
  if (typeof cfg === 'object' && cfg !== null) (cfg as { rotation?: unknown }).rotation ??= {};
  const problems = [...(validate(cfg) ? [] : schemaProblems(validate.errors ?? []))];
  const connection = (cfg as { connection?: unknown }).connection;
  if (typeof connection === 'object' && connection !== null) {
    const operator = (connection as { defined_by?: unknown }).defined_by === 'operator';
    const check = operator ? validateOperator : validateAgent;
    if (!check(connection)) {
      const errors = (check.errors ?? []).map((e) => ({ ...e, instancePath: `/connection${e.instancePath}` }));
      problems.push(...schemaProblems(errors));
    }
    if (operator && cfg.daemon?.type === 'libreswan') {
      problems.push('connection.defined_by: "operator" needs daemon.type "strongswan" (a swanctl.conf connection)');
    }
  }
  if (problems.length > 0) {
    const what = `invalid IPsec agent configuration${file ? ` ${file}` : ''}`;
    throw new IpsecConfigError(
      problems.length === 1 ? `${what}: ${problems[0]}` : `${what}:\n  ${problems.join('\n  ')}`,
    );
  }
  const abs = (p: string) => (isAbsolute(p) ? p : resolve(baseDir, p));
  for (const k of ['manifest', 'ca', 'cert', 'key'] as const) if (cfg.sae[k]) cfg.sae[k] = abs(cfg.sae[k]);
  if (!isOperatorDefined(cfg.connection)) cfg.connection.ike_secret_file = abs(cfg.connection.ike_secret_file);
  if (cfg.daemon.type === 'libreswan') {
    cfg.daemon.secrets_file = abs(cfg.daemon.secrets_file);
    cfg.daemon.dir = abs(cfg.daemon.dir);
    cfg.daemon.ctl_socket = abs(cfg.daemon.ctl_socket);
  }
  return cfg;
}

export function loadIpsecConfig(file: string): IpsecAgentConfig {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    throw new IpsecConfigError(`cannot read ${file} (${fileProblem(err)})`);
  }
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (err) {
    throw new IpsecConfigError(`${file} is not valid JSON: ${jsonProblem(err as Error, text)}`);
  }
  return parseIpsecConfig(raw, dirname(resolve(file)), file);
}

/** The connection as the gateways take it; reads the IKE secret file. */
export function connectionOf(c: AgentConnection): IpsecConnection {
  let ikeSecret: string;
  try {
    ikeSecret = readFileSync(c.ike_secret_file, 'utf8').split('\n')[0]!.trim();
  } catch (err) {
    throw new IpsecConfigError(`connection.ike_secret_file: cannot read ${c.ike_secret_file} (${fileProblem(err)})`);
  }
  if (ikeSecret.length < 16)
    throw new IpsecConfigError(`${c.ike_secret_file}: the IKE secret needs 16 characters or more`);
  return {
    name: c.name,
    localAddr: c.local_addr,
    remoteAddr: c.remote_addr,
    localId: c.local_id,
    remoteId: c.remote_id,
    ikeSecret,
    localTs: c.local_ts,
    remoteTs: c.remote_ts,
    ppkRequired: c.ppk === 'required',
    ...(c.ike_proposal ? { ikeProposal: c.ike_proposal } : {}),
    ...(c.esp_proposal ? { espProposal: c.esp_proposal } : {}),
  };
}
