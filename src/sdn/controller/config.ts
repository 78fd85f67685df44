import { readFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { Ajv } from 'ajv';
import { fileProblem, jsonProblem, unreadable } from '../../config/files.js';
import { schemaProblems } from '../../config/schema-problems.js';

/** `qks controller --config FILE` (docs/sdn.md#the-controller); `qks init` writes one. */
export interface ControllerConfig {
  readonly kmes: ReadonlyArray<{
    readonly id: string;
    /** Where the KME serves its node interface: its SAE API listener. */
    readonly url: string;
    /** The site's IPv4 router ID: PCEP endpoints and ERO hops. */
    readonly node_address: string;
    /** False: never an interior node of a path (default true). */
    readonly trusted?: boolean;
  }>;
  /** The operator's credentials at the KMEs (paths, relative to this file). */
  readonly ca: string;
  readonly cert: string;
  readonly key: string;
  /** The controller's own HTTP API (network view, paths): loopback, a free port by default. */
  readonly api?: { readonly host?: string; readonly port?: number };
  /** The PCE: PCEP over TCP (RFC 5440), 127.0.0.1:4189 by default. */
  readonly pcep?: { readonly host?: string; readonly port?: number };
  readonly poll_interval_ms?: number;
  /** Which KME serves each SAE: the ends of services. */
  readonly saes?: ReadonlyArray<{ readonly id: string; readonly kme: string }>;
  /** Where the controller keeps its services (services.json); default: beside this file. */
  readonly state_dir?: string;
}

const endpoint = {
  type: 'object',
  additionalProperties: false,
  properties: { host: { type: 'string', minLength: 1 }, port: { type: 'integer', minimum: 0, maximum: 65535 } },
};

const SCHEMA = {
  type: 'object',
  additionalProperties: false,
  required: ['kmes', 'ca', 'cert', 'key'],
  properties: {
    kmes: {
      type: 'array',
      minItems: 1,
      items: {
        type: 'object',
        additionalProperties: false,
        required: ['id', 'url', 'node_address'],
        properties: {
          id: { type: 'string', minLength: 1 },
          url: { type: 'string', pattern: '^https://' },
          node_address: { type: 'string', pattern: '^(\\d{1,3}\\.){3}\\d{1,3}$' },
          trusted: { type: 'boolean' },
        },
      },
    },
    ca: { type: 'string', minLength: 1 },
    cert: { type: 'string', minLength: 1 },
    key: { type: 'string', minLength: 1 },
    api: endpoint,
    pcep: endpoint,
    poll_interval_ms: { type: 'integer', minimum: 100, maximum: 600_000 },
    saes: {
      type: 'array',
      items: {
        type: 'object',
        additionalProperties: false,
        required: ['id', 'kme'],
        properties: { id: { type: 'string', minLength: 1 }, kme: { type: 'string', minLength: 1 } },
      },
    },
    state_dir: { type: 'string', minLength: 1 },
  },
} as const;

const validate = new Ajv({ allErrors: true, verbose: true }).compile<ControllerConfig>(SCHEMA);

export class ControllerConfigError extends Error {
  override name = 'ControllerConfigError';
}

/** Reads and checks a controller configuration; credential paths become absolute. */
export function loadControllerConfig(file: string): ControllerConfig {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    throw new ControllerConfigError(`cannot read controller configuration ${file} (${fileProblem(err)})`);
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (err) {
    throw new ControllerConfigError(`${file} is not valid JSON: ${jsonProblem(err as Error, text)}`);
  }
  if (!validate(parsed)) {
    const problems = schemaProblems(validate.errors ?? []);
    const what = `invalid controller configuration ${file}`;
    throw new ControllerConfigError(
      problems.length === 1 ? `${what}: ${problems[0]}` : `${what}:\n  ${problems.join('\n  ')}`,
    );
  }
  const ids = parsed.kmes.map((k) => k.id);
  const addresses = parsed.kmes.map((k) => k.node_address);
  for (const [what, values] of [
    ['KME', ids],
    ['node address', addresses],
  ] as const) {
    const twice = values.find((v, i) => values.indexOf(v) !== i);
    if (twice) throw new ControllerConfigError(`${file}: ${what} ${twice} appears twice`);
  }
  const here = (p: string) => resolve(dirname(file), p);
  const unknown = (parsed.saes ?? []).find((s) => !ids.includes(s.kme));
  if (unknown)
    throw new ControllerConfigError(`${file}: SAE ${unknown.id} is served by ${unknown.kme}, not a KME here`);
  // The operator's credentials are read at every poll: a wrong path is named now, with its key.
  for (const key of ['ca', 'cert', 'key'] as const) {
    const why = unreadable(here(parsed[key]));
    if (why) throw new ControllerConfigError(`${file}: ${key}: cannot read ${here(parsed[key])} (${why})`);
  }
  return {
    ...parsed,
    ca: here(parsed.ca),
    cert: here(parsed.cert),
    key: here(parsed.key),
    state_dir: here(parsed.state_dir ?? '.'),
  };
}
