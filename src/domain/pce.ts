/**
 * Path computation for the SDN controller (the PCE role, docs/sdn.md): paths through the QKD
 * network under constraints — at most so many hops, links of at least a secret key rate, holding at
 * least so much key material, interior nodes trusted, and several paths disjoint from each other.
 * Pure: the controller supplies the network as it last saw it.
 */
export interface PceNode {
  readonly id: string;
  /** May carry relayed keys; an untrusted node may still be a path's source or destination. */
  readonly trusted: boolean;
}

export interface PceLink {
  readonly id: string;
  readonly a: string;
  readonly b: string;
  readonly up: boolean;
  /** Secret key rate, bit/s (0 when unknown). */
  readonly rateBps: number;
  /** Key material each end holds of its own share, bits (what a key sent from that end can use). */
  readonly availableBits: Readonly<Record<string, number>>;
}

export interface PceNetwork {
  readonly nodes: readonly PceNode[];
  readonly links: readonly PceLink[];
}

export interface PathRequest {
  readonly source: string;
  readonly destination: string;
  /** Bits the path must carry (a request's keys); they weigh each link's cost. */
  readonly bits: number;
  readonly maxHops?: number;
  readonly minRateBps?: number;
  /** Each link must hold at least this much at its sending end, bits (default: `bits`). */
  readonly minAvailableBits?: number;
  /** How many link- and node-disjoint paths (default 1). */
  readonly paths?: number;
}

export interface ComputedPath {
  readonly nodes: readonly string[];
  readonly links: readonly string[];
  readonly cost: number;
}

/** Most hops a path may have when the request sets no bound. */
export const DEFAULT_MAX_HOPS = 32;

/**
 * The cheapest paths for `req`, fewest first to fail: each link costs 1 + bits / available at its
 * sending end (the KMEs' own formula, docs/network.md), among the links that meet the constraints.
 * Several paths are taken one after the other, each avoiding the links and interior nodes of those
 * before (a greedy choice: it may find fewer disjoint paths than exist). Returns as many as it
 * found, possibly none.
 */
export function computePaths(net: PceNetwork, req: PathRequest): ComputedPath[] {
  const maxHops = req.maxHops ?? DEFAULT_MAX_HOPS;
  const need = req.minAvailableBits ?? req.bits;
  const trusted = new Map(net.nodes.map((n) => [n.id, n.trusted]));
  if (!trusted.has(req.source) || !trusted.has(req.destination) || req.source === req.destination) return [];
  const usedLinks = new Set<string>();
  const usedNodes = new Set<string>();
  const found: ComputedPath[] = [];
  for (let i = 0; i < (req.paths ?? 1); i++) {
    const path = cheapest(
      net,
      req,
      maxHops,
      (link, from) => {
        if (!link.up || usedLinks.has(link.id) || link.rateBps < (req.minRateBps ?? 0)) return Infinity;
        const available = link.availableBits[from] ?? 0;
        return available < need || available <= 0 ? Infinity : 1 + req.bits / available;
      },
      (node) => node === req.destination || (trusted.get(node) === true && !usedNodes.has(node)),
    );
    if (!path) break;
    found.push(path);
    for (const l of path.links) usedLinks.add(l);
    for (const n of path.nodes.slice(1, -1)) usedNodes.add(n);
  }
  return found;
}

interface Label {
  readonly cost: number;
  readonly hops: number;
  readonly nodes: readonly string[];
  readonly links: readonly string[];
}

/**
 * Bellman-Ford by hop count: after round h, the cheapest path of at most h hops to every node, so
 * that the hop bound is exact (Dijkstra alone would keep a cheap long path and lose a dearer short
 * one). Ties go to fewer hops, then to node IDs, as the KMEs' own routing does.
 */
function cheapest(
  net: PceNetwork,
  req: PathRequest,
  maxHops: number,
  cost: (link: PceLink, from: string) => number,
  mayEnter: (node: string) => boolean,
): ComputedPath | null {
  let best = new Map<string, Label>([[req.source, { cost: 0, hops: 0, nodes: [req.source], links: [] }]]);
  for (let round = 0; round < maxHops; round++) {
    const next = new Map(best);
    let changed = false;
    for (const [at, label] of best) {
      // Keys pass on only through trusted nodes; the destination ends the path.
      if (label.hops !== round || (at !== req.source && at === req.destination)) continue;
      for (const link of net.links) {
        const to = link.a === at ? link.b : link.b === at ? link.a : undefined;
        if (to === undefined || label.nodes.includes(to) || !mayEnter(to)) continue;
        const c = cost(link, at);
        if (c === Infinity) continue;
        const candidate = {
          cost: label.cost + c,
          hops: round + 1,
          nodes: [...label.nodes, to],
          links: [...label.links, link.id],
        };
        const known = next.get(to);
        if (!known || better(candidate, known)) {
          next.set(to, candidate);
          changed = true;
        }
      }
    }
    best = next;
    if (!changed) break;
  }
  const end = best.get(req.destination);
  return end ? { nodes: end.nodes, links: end.links, cost: end.cost } : null;
}

function better(x: Label, y: Label): boolean {
  if (x.cost !== y.cost) return x.cost < y.cost;
  if (x.hops !== y.hops) return x.hops < y.hops;
  return x.nodes.join('\u0000') < y.nodes.join('\u0000');
}
