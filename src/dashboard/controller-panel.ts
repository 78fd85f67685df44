import { request } from 'undici';
import type { NetworkView } from './network.js';

/** What the dashboard shows of the SDN controller (docs/sdn.md): its view of the network, its installed paths. */
export interface ControllerPanel {
  readonly url: string;
  readonly reachable: boolean;
  readonly error?: string;
  readonly nodes?: number;
  readonly nodes_reachable?: number;
  readonly links?: number;
  readonly links_up?: number;
  readonly virtual_links?: ReadonlyArray<{ readonly id: string; readonly path: readonly string[] }>;
}

interface ControllerNetwork {
  nodes: Array<{ reachable: boolean }>;
  links: Array<{ up: boolean }>;
}

async function getJson<T>(url: string): Promise<T> {
  const res = await request(url, { headersTimeout: 2000, bodyTimeout: 2000 });
  if (res.statusCode !== 200) {
    await res.body.dump();
    throw new Error(`HTTP ${res.statusCode}`);
  }
  return (await res.body.json()) as T;
}

/** A view with the controller's panel added, when there is a controller. */
export const withController =
  (view: () => Promise<NetworkView>, controllerUrl: () => string | undefined) => async () => {
    const url = controllerUrl();
    const v = await view();
    return url ? { ...v, controller: await readControllerPanel(url) } : v;
  };

/** Reads the controller's API (on loopback, beside the dashboard); a controller that does not answer says so. */
export async function readControllerPanel(url: string): Promise<ControllerPanel> {
  try {
    const [network, installed] = await Promise.all([
      getJson<ControllerNetwork>(`${url}/api/v1/network`),
      getJson<{ virtual_links: Array<{ id: string; path: string[] }> }>(`${url}/api/v1/virtual-links`),
    ]);
    return {
      url,
      reachable: true,
      nodes: network.nodes.length,
      nodes_reachable: network.nodes.filter((n) => n.reachable).length,
      links: network.links.length,
      links_up: network.links.filter((l) => l.up).length,
      virtual_links: installed.virtual_links,
    };
  } catch (err) {
    return { url, reachable: false, error: (err as Error).message };
  }
}
