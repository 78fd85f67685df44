/**
 * Paths through the QKD network for relayed keys: Dijkstra over its links, never through a site
 * marked untrusted (such a site may still be the source or the target of a key).
 */
export interface NetworkGraph {
  readonly links: ReadonlyArray<{ readonly id: string; readonly a: string; readonly b: string }>;
  /** Sites keys must never pass through. */
  readonly untrusted: ReadonlySet<string>;
}

/** What using a link costs (≥ 0; Infinity: not usable now). One per hop unless told otherwise. */
export type LinkCost = (link: { id: string; a: string; b: string }, from: string) => number;

/**
 * The cheapest path of KMEs from `from` to `to`, both included, or null when none exists. Equal
 * costs are settled by fewer hops, then by KME IDs, so every KME computes the same path.
 */
export function shortestPath(g: NetworkGraph, from: string, to: string, cost: LinkCost = () => 1): string[] | null {
  if (from === to) return [from];
  const best = new Map<string, { cost: number; hops: number; path: string[] }>([
    [from, { cost: 0, hops: 0, path: [from] }],
  ]);
  const done = new Set<string>();
  for (;;) {
    let here: string | undefined;
    for (const [kme, b] of best) {
      if (done.has(kme)) continue;
      const cur = here === undefined ? undefined : best.get(here)!;
      if (!cur || better(b, cur)) here = kme;
    }
    if (here === undefined) return null;
    if (here === to) return best.get(here)!.path;
    done.add(here);
    // Keys pass through a site only if it is trusted; the source always sends.
    if (here !== from && g.untrusted.has(here)) continue;
    const at = best.get(here)!;
    for (const link of g.links) {
      const next = link.a === here ? link.b : link.b === here ? link.a : undefined;
      if (next === undefined || done.has(next)) continue;
      const c = cost(link, here);
      if (!(c >= 0) || c === Infinity) continue;
      const candidate = { cost: at.cost + c, hops: at.hops + 1, path: [...at.path, next] };
      const known = best.get(next);
      if (!known || better(candidate, known)) best.set(next, candidate);
    }
  }
}

function better(x: { cost: number; hops: number; path: string[] }, y: { cost: number; hops: number; path: string[] }) {
  if (x.cost !== y.cost) return x.cost < y.cost;
  if (x.hops !== y.hops) return x.hops < y.hops;
  return x.path.join('\u0000') < y.path.join('\u0000');
}
