/**
 * Multicast across sites (docs/network.md): one key for slaves at several KMEs. The source's KME
 * sends it on a tree of trusted KMEs, one branch per neighbour it needs; every KME of the tree
 * keeps the key for its own slaves and passes it on to its children.
 */
export interface Branch {
  readonly kme: string;
  /** Slaves served by this KME. */
  readonly slaves: readonly string[];
  readonly children: readonly Branch[];
}

interface Node {
  kme: string;
  slaves: string[];
  children: Node[];
}

/**
 * The tree from `root` that reaches every target by its path: each path is grafted at its last
 * KME already in the tree, so that no KME appears twice (it would get the same key ID twice) and
 * every step is a link of a path that routing chose.
 */
export function multicastTree(
  root: string,
  paths: ReadonlyArray<readonly string[]>,
  slavesAt: ReadonlyMap<string, readonly string[]>,
): Branch {
  const nodes = new Map<string, Node>([[root, { kme: root, slaves: [], children: [] }]]);
  for (const path of paths) {
    if (path[0] !== root) throw new RangeError(`a path from ${path[0]} in the tree of ${root}`);
    let at = path.length - 1;
    while (!nodes.has(path[at]!)) at--;
    let parent = nodes.get(path[at]!)!;
    for (const kme of path.slice(at + 1)) {
      const node: Node = { kme, slaves: [], children: [] };
      nodes.set(kme, node);
      parent.children.push(node);
      parent = node;
    }
  }
  for (const [kme, slaves] of slavesAt) {
    const node = nodes.get(kme);
    if (!node) throw new RangeError(`no path reaches ${kme}`);
    node.slaves.push(...slaves);
  }
  return nodes.get(root)!;
}

/** Every slave of a branch, its own first. */
export const slavesIn = (b: Branch): string[] => [...b.slaves, ...b.children.flatMap(slavesIn)];

/** KMEs of a branch, depth first: for logs and the dashboard. */
export const kmesIn = (b: Branch): string[] => [b.kme, ...b.children.flatMap(kmesIn)];
