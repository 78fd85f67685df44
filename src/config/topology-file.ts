import { Ajv } from 'ajv';
import { existsSync, readFileSync } from 'node:fs';
import { parse as parseYaml } from 'yaml';
import {
  builtInTopology,
  IPV4_PATTERN,
  linkId,
  saeIdsOf,
  topologyProblems,
  TopologyError,
  type Topology,
} from '../domain/topology.js';
import { fileProblem } from './files.js';
import { schemaProblems } from './schema-problems.js';

/** The topology file's shape (JSON or YAML); docs/network.md describes it. */
interface TopologyFile {
  sites: Array<{ kme: string; node_address?: string; saes?: string[]; trusted?: boolean }>;
  links: Array<{
    id?: string;
    a: string;
    b: string;
    source?: { type: 'qkd'; distance_km?: number } | { type: 'simulated'; rate_bps?: number };
  }>;
}

const id = { type: 'string', pattern: '^[A-Za-z0-9][A-Za-z0-9._~-]{0,63}$', description: 'an ID' };
const strict = (properties: Record<string, unknown>, required: string[]) => ({
  type: 'object',
  properties,
  required,
  additionalProperties: false,
});
const positive = { type: 'number', exclusiveMinimum: 0 };
const SCHEMA = strict(
  {
    sites: {
      type: 'array',
      minItems: 2,
      items: strict(
        {
          kme: id,
          node_address: { type: 'string', pattern: IPV4_PATTERN, description: 'an IPv4 address, e.g. 127.0.1.1' },
          saes: { type: 'array', items: id },
          trusted: { type: 'boolean' },
        },
        ['kme'],
      ),
    },
    links: {
      type: 'array',
      items: strict(
        {
          id,
          a: id,
          b: id,
          source: {
            type: 'object',
            discriminator: { propertyName: 'type' },
            oneOf: [
              strict({ type: { const: 'qkd' }, distance_km: positive }, ['type']),
              strict({ type: { const: 'simulated' }, rate_bps: positive }, ['type']),
            ],
          },
        },
        ['a', 'b'],
      ),
    },
  },
  ['sites', 'links'],
);
const validate = new Ajv({ allErrors: true, verbose: true, discriminator: true }).compile(SCHEMA);

/** A topology from parsed file contents; sites without `saes` get `saesPerSite`, named as the demo's. */
export function topologyFromObject(raw: unknown, saesPerSite = 2, what = 'the topology'): Topology {
  if (!validate(raw)) throw problemsError(what, schemaProblems(validate.errors ?? []));
  const file = raw as unknown as TopologyFile;
  const topology: Topology = {
    sites: file.sites.map((s, i) => ({
      kme: s.kme,
      nodeAddress: s.node_address ?? `127.0.1.${i + 1}`,
      saes: s.saes ?? saeIdsOf(s.kme, saesPerSite),
      trusted: s.trusted ?? true,
    })),
    links: file.links.map((l) => ({
      id: l.id ?? linkId(l.a, l.b),
      a: l.a,
      b: l.b,
      ...(l.source ? { source: l.source } : {}),
    })),
  };
  const problems = topologyProblems(topology);
  if (problems.length > 0) throw problemsError(what, problems);
  return topology;
}

/** `--topology`: a built-in shape (`ring:5`) or a file (JSON or YAML). */
export function loadTopology(spec: string, saesPerSite = 2): Topology {
  if (/^[a-z]+:\d+$/.test(spec) && !existsSync(spec)) return builtInTopology(spec, saesPerSite);
  let text: string;
  try {
    text = readFileSync(spec, 'utf8');
  } catch (err) {
    const shapes = 'line:N, ring:N, star:N or mesh:N';
    throw new TopologyError(`--topology ${spec}: ${fileProblem(err)} (a file, or a shape: ${shapes})`);
  }
  let raw: unknown;
  try {
    raw = parseYaml(text);
  } catch (err) {
    throw new TopologyError(`${spec} is neither JSON nor YAML: ${(err as Error).message.split('\n')[0]}`);
  }
  return topologyFromObject(raw, saesPerSite, spec);
}

/** The file form of a topology, every default written out: `qks init` leaves it as DIR/topology.json. */
export function topologyToObject(t: Topology): TopologyFile {
  return {
    sites: t.sites.map((s) => ({ kme: s.kme, node_address: s.nodeAddress, saes: [...s.saes], trusted: s.trusted })),
    links: t.links.map((l) => ({ id: l.id, a: l.a, b: l.b, ...(l.source ? { source: { ...l.source } } : {}) })),
  };
}

function problemsError(what: string, problems: string[]): TopologyError {
  const head = `invalid topology ${what === 'the topology' ? '' : `${what}`}`.trimEnd();
  return new TopologyError(problems.length === 1 ? `${head}: ${problems[0]}` : `${head}:\n  ${problems.join('\n  ')}`);
}
