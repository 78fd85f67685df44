/**
 * A QKS network's shape: sites (one KME each, its SAEs, a node address) and the QKD links between
 * them. Built-in shapes (`line:N`, `ring:N`, `star:N`, `mesh:N`) or a topology file
 * (docs/network.md); `qks init` and `qks demo` make a deployment of it.
 */
export interface Site {
  readonly kme: string;
  /** An IPv4 router ID, for the SDN control of the network. */
  readonly nodeAddress: string;
  readonly saes: readonly string[];
  /** false: keys are never relayed through this site (it still gets keys of its own). */
  readonly trusted: boolean;
}

/** A link's source settings where they differ from the deployment's (`--source` and friends). */
export type LinkSource =
  { readonly type: 'qkd'; readonly distance_km?: number } | { readonly type: 'simulated'; readonly rate_bps?: number };

export interface TopologyLink {
  readonly id: string;
  readonly a: string;
  readonly b: string;
  readonly source?: LinkSource;
}

export interface Topology {
  readonly sites: readonly Site[];
  readonly links: readonly TopologyLink[];
}

/** A dotted-quad IPv4 address, for schemas. */
export const IPV4_PATTERN = '^(25[0-5]|2[0-4][0-9]|1?[0-9]?[0-9])([.](25[0-5]|2[0-4][0-9]|1?[0-9]?[0-9])){3}$';

export const SHAPES = ['line', 'ring', 'star', 'mesh'] as const;
export type Shape = (typeof SHAPES)[number];
/** Site IDs are letters; 26 sites at most in a built-in shape (a mesh of 26 has 325 links). */
const MAX_SITES = 26;
/** Two sites are the least a network has; a ring needs three. */
const MIN_SITES: Record<Shape, number> = { line: 2, ring: 3, star: 3, mesh: 2 };

export class TopologyError extends Error {
  override name = 'TopologyError';
}

/** `kme-a` → `a`: the part of a KME ID that names its SAEs and links. */
const short = (kme: string) => kme.replace(/^kme-/, '');
export const linkId = (a: string, b: string) => `link-${short(a)}-${short(b)}`;
export const saeIdsOf = (kme: string, count: number): string[] =>
  Array.from({ length: count }, (_, i) => `sae-${short(kme)}${i + 1}`);

/**
 * `line:4`, `ring:5`, `star:5` (site 1 is the hub), `mesh:12`: sites `kme-a`, `kme-b`, … with
 * `saesPerSite` SAEs each and node addresses 127.0.1.1, 127.0.1.2, … in site order.
 */
export function builtInTopology(spec: string, saesPerSite = 2): Topology {
  const m = /^([a-z]+):(\d+)$/.exec(spec);
  const shape = m?.[1] as Shape | undefined;
  if (!m || !shape || !SHAPES.includes(shape)) {
    throw new TopologyError(`"${spec}" is not a shape: ${SHAPES.map((s) => `${s}:N`).join(', ')}, or a file`);
  }
  const n = Number(m[2]);
  if (n < MIN_SITES[shape] || n > MAX_SITES) {
    throw new TopologyError(`${shape}:N takes ${MIN_SITES[shape]} to ${MAX_SITES} sites, not ${n}`);
  }
  const kmes = Array.from({ length: n }, (_, i) => `kme-${String.fromCharCode(97 + i)}`);
  const pairs: Array<[number, number]> = [];
  if (shape === 'line' || shape === 'ring') for (let i = 1; i < n; i++) pairs.push([i - 1, i]);
  if (shape === 'ring') pairs.push([0, n - 1]);
  if (shape === 'star') for (let i = 1; i < n; i++) pairs.push([0, i]);
  if (shape === 'mesh') for (let i = 0; i < n; i++) for (let j = i + 1; j < n; j++) pairs.push([i, j]);
  return joined(kmes, pairs, saesPerSite);
}

/** KMEs in a row, each joined to the next: what `qks init --kmes` has always made. */
export function lineOf(kmes: readonly string[], saesPerSite = 2): Topology {
  const pairs = kmes.slice(1).map((_, i): [number, number] => [i, i + 1]);
  return joined(kmes, pairs, saesPerSite);
}

/** Sites in order (node addresses 127.0.1.1, …; trusted) and links between the given indexes. */
function joined(kmes: readonly string[], pairs: ReadonlyArray<[number, number]>, saesPerSite: number): Topology {
  return {
    sites: kmes.map((kme, i) => ({
      kme,
      nodeAddress: `127.0.1.${i + 1}`,
      saes: saeIdsOf(kme, saesPerSite),
      trusted: true,
    })),
    links: pairs.map(([i, j]) => ({ id: linkId(kmes[i]!, kmes[j]!), a: kmes[i]!, b: kmes[j]! })),
  };
}

/** What is wrong with a topology, one line each; empty when it is sound. */
export function topologyProblems(t: Topology): string[] {
  const problems: string[] = [];
  const seen = (what: string, values: readonly string[]) => {
    const dup = values.filter((v, i) => values.indexOf(v) !== i);
    for (const d of new Set(dup)) problems.push(`${what} ${d} appears twice`);
  };
  seen(
    'site',
    t.sites.map((s) => s.kme),
  );
  seen(
    'node address',
    t.sites.map((s) => s.nodeAddress),
  );
  seen(
    'SAE',
    t.sites.flatMap((s) => s.saes),
  );
  seen(
    'link',
    t.links.map((l) => l.id),
  );
  const kmes = new Set(t.sites.map((s) => s.kme));
  const pairs = new Set<string>();
  for (const l of t.links) {
    for (const end of [l.a, l.b]) if (!kmes.has(end)) problems.push(`link ${l.id}: no site ${end}`);
    if (l.a === l.b) problems.push(`link ${l.id} joins ${l.a} to itself`);
    const pair = [l.a, l.b].sort().join(' ');
    if (pairs.has(pair)) problems.push(`link ${l.id}: ${l.a} and ${l.b} are joined twice`);
    pairs.add(pair);
  }
  if (t.sites.length > 1 && problems.length === 0) {
    const apart = unreachable(t);
    if (apart.length > 0) problems.push(`no path of links from ${t.sites[0]!.kme} to ${apart.join(', ')}`);
  }
  return problems;
}

/** Sites no chain of links reaches from the first. */
function unreachable(t: Topology): string[] {
  const reached = new Set([t.sites[0]!.kme]);
  for (let grew = true; grew;) {
    grew = false;
    for (const l of t.links) {
      if (reached.has(l.a) !== reached.has(l.b)) {
        reached.add(l.a).add(l.b);
        grew = true;
      }
    }
  }
  return t.sites.map((s) => s.kme).filter((k) => !reached.has(k));
}

/** The KMEs a site's KME shares a link with. */
export function neighbours(t: Topology, kme: string): string[] {
  return t.links.flatMap((l) => (l.a === kme ? [l.b] : l.b === kme ? [l.a] : []));
}
